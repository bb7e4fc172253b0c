#!/usr/bin/env bash
# `cmake --install` of a built tree into a fresh prefix, then a project outside the
# tree (tests/packaging/consumer/) that does find_package(Tether), builds the
# embedding example against the prefix only and runs it.
#   consumer_test.sh BUILD_DIR WORK_DIR [COMPILER_LAUNCHER]
set -euo pipefail
build=$(realpath "$1")
work=$2
launcher=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
source_dir=$(cd "$here/../.." && pwd)

rm -rf "$work"
mkdir -p "$work"
work=$(realpath "$work")
prefix=$work/prefix

echo "== install into $prefix"
cmake --install "$build" --prefix "$prefix" >"$work/install.log"

fail() { echo "FAIL: $*" >&2; exit 1; }
for f in bin/tetherd bin/tetherctl bin/tether-load include/tether/tether.hpp; do
  [[ -e $prefix/$f ]] || fail "$f is not installed"
done
# lib/ or lib/<multiarch>/, depending on the prefix.
for f in libtether_actors.a TetherConfig.cmake TetherTargets.cmake TetherImportedTargets.cmake; do
  [[ -n $(find "$prefix" -name "$f") ]] || fail "$f is not installed"
done
# Only the public headers, and nothing that points back into the source or build tree.
others=$(cd "$prefix/include" && find . -type f ! -path './tether/*')
[[ -z $others ]] || fail "headers outside include/tether/: $others"
if find "$prefix" -name '*.cmake' -exec grep -l -e "$source_dir" -e "$build" {} +; then
  fail "the CMake package refers to the source or build tree"
fi
# The system files belong to the Debian package only.
[[ ! -e $prefix/etc && ! -e $prefix/lib/systemd ]] || fail "system files in the prefix"

echo "== configure the consumer"
args=(-S "$here/consumer" -B "$work/consumer-build" -G Ninja
      -DCMAKE_BUILD_TYPE=Release
      -DCMAKE_PREFIX_PATH="$prefix"
      -DTETHER_EXAMPLE_SOURCE="$source_dir/tests/embedding/embed_example.cpp")
if [[ -n $launcher ]]; then args+=(-DCMAKE_CXX_COMPILER_LAUNCHER="$launcher"); fi
cmake "${args[@]}" >"$work/configure.log" || { cat "$work/configure.log"; exit 1; }
grep -q "^Tether_DIR:PATH=$prefix/" "$work/consumer-build/CMakeCache.txt" \
  || fail "Tether was not found in the prefix"

echo "== build the consumer"
cmake --build "$work/consumer-build" -j2 >"$work/build.log" || { cat "$work/build.log"; exit 1; }
# Compiled against the installed headers, not the source tree.
if grep -q -- "$source_dir/libactors" "$work/consumer-build/build.ninja"; then
  fail "the consumer compiled against the source tree"
fi

echo "== run the example"
"$work/consumer-build/embed_example"
echo "consumer: ok"
