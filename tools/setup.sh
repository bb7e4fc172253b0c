#!/usr/bin/env bash
# Installs every Debian package Tether needs to build, test and benchmark.
# Non-interactive, idempotent, safe to rerun: packages already present are skipped,
# and `apt-get update` runs at most once per invocation, only when something is missing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libcaf-dev
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libprotobuf-dev protobuf-compiler
  catch2
  libxxhash-dev
  libsnappy-dev
  libre2-dev
  libcli11-dev
  libssl-dev openssl
  clang-15 libfuzzer-15-dev
  python3 python3-websocket python3-protobuf python3-pytest
  curl iproute2 procps
  dpkg-dev file systemd
)
# Benchmark and end-to-end peers; TETHER_SETUP_MINIMAL=1 skips them.
if [[ "${TETHER_SETUP_MINIMAL:-0}" != 1 ]]; then
  packages+=(nats-server libnats-dev prometheus gnuplot-nox)
  # The dashboard's browser test (headless Chromium driven by Selenium).
  packages+=(chromium chromium-driver python3-selenium)
  # The opt-in package test in a fresh root (TETHER_TEST_DEBOOTSTRAP=1).
  packages+=(debootstrap)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

SUDO=""
if [[ $(id -u) != 0 ]]; then SUDO=sudo; fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "setup: done"
