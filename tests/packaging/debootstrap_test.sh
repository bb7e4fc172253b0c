#!/usr/bin/env bash
# Installs the tether package with `apt-get install ./tether_*.deb` (dpkg -i plus the
# Depends from the mirror) into a fresh Debian bookworm root made by debootstrap, then
# checks what the maintainer scripts did and runs `tetherd --version` inside the root.
# Opt-in, it downloads a base system: runs only with TETHER_TEST_DEBOOTSTRAP=1, as
# root, with debootstrap installed; otherwise exits 77 (skipped).
#   debootstrap_test.sh BUILD_DIR WORK_DIR
# The base root is kept as WORK_DIR/../bookworm-base.tar.gz and reused.
set -euo pipefail
build=$(realpath "$1")
work=$2
mirror=${TETHER_DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [[ ${TETHER_TEST_DEBOOTSTRAP:-0} != 1 ]]; then
  echo "skipped: set TETHER_TEST_DEBOOTSTRAP=1 to run it (downloads a bookworm base system)"
  exit 77
fi
if [[ $(id -u) != 0 ]] || ! command -v debootstrap >/dev/null || ! command -v chroot >/dev/null; then
  echo "skipped: needs root, debootstrap and chroot"
  exit 77
fi

fail() { echo "FAIL: $*" >&2; exit 1; }
mkdir -p "$work"
work=$(realpath "$work")
root=$work/root
# Nothing stays mounted or half-made in the work directory after an exit.
pid=""
cleanup() {
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" || true; wait "$pid" || true; fi
  if mountpoint -q "$root/proc"; then umount "$root/proc" || true; fi
  rm -rf "$root"
}
trap cleanup EXIT
cleanup

base=$(dirname "$work")/bookworm-base.tar.gz
if [[ ! -s $base ]]; then
  echo "== debootstrap bookworm from $mirror (once)"
  timeout 1200 debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" \
    || { tail -20 "$work/debootstrap.log"; fail "debootstrap"; }
  tar -C "$root" -czf "$base.tmp" . && mv "$base.tmp" "$base"
  rm -rf "$root"
fi
mkdir -p "$root"
tar -C "$root" -xzf "$base"

echo "== packages"
(cd "$build" && cpack -G DEB -B "$work/out" >"$work/cpack.log") || { cat "$work/cpack.log"; exit 1; }
cp "$work"/out/tether_*.deb "$root/tmp/"
deb=$(cd "$root/tmp" && ls tether_*.deb)

echo "== apt-get install ./$deb in the fresh root"
mount -t proc proc "$root/proc"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
in_root=(chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin
         DEBIAN_FRONTEND=noninteractive)
timeout 600 "${in_root[@]}" apt-get -q update >"$work/apt.log" 2>&1 || { tail "$work/apt.log"; fail "apt-get update"; }
timeout 900 "${in_root[@]}" apt-get install -y -q --no-install-recommends "/tmp/$deb" >>"$work/apt.log" 2>&1 \
  || { tail -30 "$work/apt.log"; fail "apt-get install"; }
"${in_root[@]}" dpkg-query -W -f='${Status} ${Version}\n' tether | grep -q "install ok installed" \
  || fail "tether is not installed"

echo "== inside the root"
version=$("${in_root[@]}" tetherd --version)
echo "$version"
[[ $version == "tetherd "* ]] || fail "tetherd --version: $version"
"${in_root[@]}" getent passwd tether || fail "no tether user"
[[ $("${in_root[@]}" stat -c %U /var/lib/tether) == tether ]] || fail "/var/lib/tether not owned by tether"
"${in_root[@]}" test -f /etc/tether/tetherd.conf || fail "no /etc/tether/tetherd.conf"
"${in_root[@]}" ldd /usr/bin/tetherd | grep -q 'not found' && fail "tetherd misses a library"
if command -v systemd-analyze >/dev/null; then
  cp -rn /lib/systemd/system/. "$root/lib/systemd/system/"
  out=$(systemd-analyze verify --root="$root" /lib/systemd/system/tetherd.service 2>&1) \
    || { echo "$out"; fail "systemd-analyze verify"; }
  [[ -z $out ]] || { echo "$out"; fail "systemd-analyze verify warned"; }
fi

echo "== remove and purge"
timeout 300 "${in_root[@]}" apt-get purge -y -q tether >>"$work/apt.log" 2>&1 || fail "apt-get purge"
[[ ! -e $root/usr/bin/tetherd && ! -e $root/var/lib/tether ]] || fail "purge left files"

echo "== as tools/packaging/Dockerfile does: a tether user with uid 10001 first"
"${in_root[@]}" userdel tether
"${in_root[@]}" groupdel tether 2>/dev/null || true
"${in_root[@]}" groupadd --system --gid 10001 tether
"${in_root[@]}" useradd --system --uid 10001 --gid tether --home-dir /var/lib/tether \
  --no-create-home --shell /usr/sbin/nologin tether
timeout 600 "${in_root[@]}" apt-get install -y -q --no-install-recommends "/tmp/$deb" >>"$work/apt.log" 2>&1 \
  || { tail -30 "$work/apt.log"; fail "apt-get install over an existing user"; }
[[ $("${in_root[@]}" id -u tether) == 10001 ]] || fail "postinst replaced the existing tether user"
[[ $("${in_root[@]}" stat -c %u /var/lib/tether) == 10001 ]] || fail "/var/lib/tether not owned by 10001"

echo "== tetherd as uid 10001 with /etc/tether/tetherd.conf"
log=$work/tetherd.log
chroot --userspec=10001:10001 "$root" /usr/bin/env -i PATH=/usr/bin:/bin \
  /usr/bin/tetherd --config-file=/etc/tether/tetherd.conf --tether.port=0 >"$log" 2>&1 &
pid=$!
deadline=$((SECONDS + 60))
until grep -q "listening on" "$log"; do
  kill -0 "$pid" 2>/dev/null || { cat "$log"; fail "tetherd exited"; }
  ((SECONDS < deadline)) || { kill -KILL "$pid"; cat "$log"; fail "tetherd did not start in 60 s"; }
  sleep 0.2
done
cat "$log"
kill -TERM "$pid"
rc=0
timeout 30 tail --pid="$pid" -f /dev/null || { kill -KILL "$pid"; fail "tetherd did not stop on SIGTERM"; }
wait "$pid" || rc=$?
((rc == 0)) || fail "tetherd exited with $rc after SIGTERM"
echo "debootstrap: ok"
