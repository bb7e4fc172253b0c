#!/usr/bin/env bash
# Sets up a fresh Debian machine, builds everything and runs every test through ctest.
# This is the README's test command; CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j2
ctest --test-dir build --output-on-failure --timeout 300
# The unit tests under ASan and UBSan and 30 s of every fuzz harness, in a second build
# (build-sanitize); TETHER_TEST_SANITIZE=0 skips it.
if [[ "${TETHER_TEST_SANITIZE:-1}" != 0 ]]; then
  bash tools/sanitize.sh
fi
