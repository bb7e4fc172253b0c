#!/usr/bin/env bash
# Builds the Debian packages with CPack from a built tree and checks them without
# installing anything on this machine: control fields (Depends, conffiles, maintainer
# scripts), contents, `tetherd --version` run from the unpacked package, and the
# systemd unit through `systemd-analyze verify` against the unpacked root.
#   deb_test.sh BUILD_DIR WORK_DIR
set -euo pipefail
build=$(realpath "$1")
work=$2
rm -rf "$work"
mkdir -p "$work"
work=$(realpath "$work")

fail() { echo "FAIL: $*" >&2; exit 1; }

echo "== cpack -G DEB"
(cd "$build" && cpack -G DEB -B "$work/out" >"$work/cpack.log") || { cat "$work/cpack.log"; exit 1; }
shopt -s nullglob
debs=("$work"/out/tether_*.deb)
devs=("$work"/out/tether-dev_*.deb)
((${#debs[@]} == 1)) || fail "expected one tether_*.deb, got: ${debs[*]}"
((${#devs[@]} == 1)) || fail "expected one tether-dev_*.deb, got: ${devs[*]}"
deb=${debs[0]}
dev=${devs[0]}

echo "== tether: control"
dpkg-deb --info "$deb"
depends=$(dpkg-deb --field "$deb" Depends)
for lib in libcaf-core0.17 libcaf-io0.17 libprotobuf32 libxxhash0 libsnappy1v5 libre2-9 \
           adduser; do
  [[ $depends == *"$lib"* ]] || fail "Depends lacks $lib: $depends"
done
ctrl=$work/control
mkdir -p "$ctrl"
dpkg-deb --control "$deb" "$ctrl"
grep -qx /etc/tether/tetherd.conf "$ctrl/conffiles" || fail "tetherd.conf is not a conffile"
for s in postinst prerm postrm; do
  [[ -x $ctrl/$s ]] || fail "$s missing or not executable"
  sh -n "$ctrl/$s" || fail "$s is not valid sh"
done

echo "== tether: contents"
root=$work/root
dpkg-deb -x "$deb" "$root"
for f in usr/bin/tetherd usr/bin/tetherctl usr/bin/tether-load \
         lib/systemd/system/tetherd.service etc/tether/tetherd.conf \
         usr/share/doc/tether/examples/single-node.conf \
         usr/share/doc/tether/examples/kubernetes/tether.yaml; do
  [[ -e $root/$f ]] || fail "$f is not in the package"
done
if dpkg-deb -c "$deb" | grep -E ' \./usr/(include|lib/cmake)|\.a$'; then
  fail "development files in the tether package"
fi

echo "== tether: run the unpacked binaries"
version=$(timeout 30 "$root/usr/bin/tetherd" --version)
echo "$version"
[[ $version == "tetherd $(dpkg-deb --field "$deb" Version)" ]] || fail "tetherd --version: $version"
timeout 30 "$root/usr/bin/tetherctl" --help >/dev/null || fail "tetherctl --help"

echo "== tether: systemd-analyze verify"
if command -v systemd-analyze >/dev/null; then
  # Against the unpacked package (ExecStart= resolves there) with this machine's own
  # units beside it (the targets the unit orders itself after).
  cp -rn /lib/systemd/system/. "$root/lib/systemd/system/"
  out=$(systemd-analyze verify --root="$root" /lib/systemd/system/tetherd.service 2>&1) \
    || { echo "$out"; fail "systemd-analyze verify"; }
  [[ -z $out ]] || { echo "$out"; fail "systemd-analyze verify warned"; }
else
  fail "systemd-analyze is not installed (tools/setup.sh installs systemd)"
fi

echo "== tether-dev: contents"
dpkg-deb --info "$dev" | sed -n '/Package:/,$p'
devdepends=$(dpkg-deb --field "$dev" Depends)
for pkg in libcaf-dev libprotobuf-dev libxxhash-dev libsnappy-dev libre2-dev \
           libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev; do
  [[ $devdepends == *"$pkg"* ]] || fail "tether-dev Depends lacks $pkg: $devdepends"
done
contents=$(dpkg-deb -c "$dev")
for f in usr/include/tether/tether.hpp usr/include/tether/gateway.hpp libtether_actors.a \
         libtether_gateway.a TetherConfig.cmake \
         TetherConfigVersion.cmake TetherTargets.cmake TetherImportedTargets.cmake; do
  grep -q "$f" <<<"$contents" || fail "$f is not in tether-dev"
done
echo "deb: ok"
