#!/usr/bin/env bash
# The second libvirt host: a current upstream libvirt (Debian sid: libvirt 12.x, QEMU 11.x,
# ovmf-inteltdx) beside Debian 12's system libvirtd, for the test matrix and `make bench`.
#
# A sid root built once with mmdebstrap under $PULUMI_TDX_UPSTREAM_ROOT; its virtlogd and libvirtd
# run chrooted there, in a private mount namespace that bind-mounts /dev, /proc and /sys, and
# /var/tmp plus the test-guest cache at the same paths inside (so both hosts see the files tests
# place there). Clients reach it at $PULUMI_TDX_UPSTREAM_URI
# (qemu:///system?socket=<root>/run/libvirt/libvirt-sock).
#
# Idempotent and quick when done:
#   - the root is rebuilt only when its stamp (suite, mirror, packages, options) changes;
#   - a daemon that answers on the root's socket, started with the current qemu.conf, is left alone;
#   - after a machine restart (no daemon, stale sockets and pid files in the root) it starts afresh;
#   - a qemu.conf change restarts that root's daemons (found by their chroot, signalled by pid).
set -euo pipefail
source "$(dirname "$0")/env.sh"

root=$PULUMI_TDX_UPSTREAM_ROOT
uri=$PULUMI_TDX_UPSTREAM_URI
guest_dir=$PULUMI_TDX_CACHE/guest

# --- what the root is built from (its text is the stamp) ------------------------------------------

suite=sid
mirror=http://deb.debian.org/debian
packages=(
  libvirt-daemon libvirt-daemon-driver-qemu libvirt-daemon-driver-storage
  libvirt-daemon-driver-nodedev libvirt-daemon-driver-network libvirt-clients
  qemu-system-x86 qemu-utils ovmf ovmf-inteltdx
)
aptopts=(
  'APT::Install-Recommends "false"'
  # the sid Release file served here is past its Valid-Until date
  'Acquire::Check-Valid-Until "false"'
)
# Directories both hosts must see at the same path: pools, console logs and the test guest.
shared_dirs=(/var/tmp "$guest_dir")

# QEMU as root without a security driver (as on the Debian host); no private /dev namespace
# for QEMU: the chroot's / is not a mount point, so libvirt could not build one.
conf_marker="# pulumi-tdx settings"
conf_block=$(printf '%s\n' "$conf_marker" 'user = "root"' 'group = "root"' \
  'security_driver = "none"' 'namespaces = [ ]')

stamp=$(
  { echo "format 1"; echo "$suite $mirror"; printf '%s\n' "${packages[@]}" "${aptopts[@]}"; } |
    sha256sum | cut -d' ' -f1
)
stamp_file=$root/.pulumi-tdx-stamp
# The qemu.conf and bind mounts the running daemon was started with.
started_file=$root/run/pulumi-tdx-started

say() { echo "setup-upstream-host: $*"; }

answers() {
  [ -S "$root/run/libvirt/libvirt-sock" ] &&
    timeout 20 virsh -q -c "$uri" version >/dev/null 2>&1
}

# PIDs of virtlogd/libvirtd whose root directory is this root (only ours, never the host's).
root_daemons() {
  local pid
  for pid in $(pgrep -x libvirtd) $(pgrep -x virtlogd); do
    [ "$(readlink "/proc/$pid/root" 2>/dev/null)" = "$root" ] && echo "$pid"
  done
  return 0
}

stop_daemons() {
  local pids
  pids=$(root_daemons)
  [ -z "$pids" ] && return 0
  say "stopping the daemons of $root ($(echo $pids))"
  # shellcheck disable=SC2086
  kill $pids 2>/dev/null || true
  for _ in $(seq 100); do
    [ -z "$(root_daemons)" ] && return 0
    sleep 0.1
  done
  # shellcheck disable=SC2046
  kill -KILL $(root_daemons) 2>/dev/null || true
}

# --- lock: two setups at once (worktrees share the cache) wait for each other ----------------------

mkdir -p "$(dirname "$root")"
exec 8>"$root.lock"
flock 8

# --- the root --------------------------------------------------------------------------------------

if [ "$(cat "$stamp_file" 2>/dev/null)" != "$stamp" ]; then
  if ! command -v mmdebstrap >/dev/null; then
    say "installing mmdebstrap"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
  fi
  say "building a $suite root in $root (about a minute)"
  build=$(mktemp -d "$root.build.XXXXXX")
  trap 'rm -rf "$build"' EXIT
  opts=()
  for o in "${aptopts[@]}"; do opts+=(--aptopt="$o"); done
  include=$(IFS=,; echo "${packages[*]}")
  mmdebstrap --quiet --variant=apt "${opts[@]}" --include="$include" "$suite" "$build" "$mirror"
  echo "$stamp" >"$build/.pulumi-tdx-stamp"
  stop_daemons
  rm -rf "$root"
  mv "$build" "$root"
  trap - EXIT
fi

conf=$root/etc/libvirt/qemu.conf
if ! grep -qF "$conf_marker" "$conf"; then
  printf '\n%s\n' "$conf_block" >>"$conf"
fi
for d in "${shared_dirs[@]}"; do
  mkdir -p "$d" "$root$d"
done

# --- the daemons -----------------------------------------------------------------------------------

# What the running daemons were started with: their qemu.conf and the directories bind-mounted
# into their namespace (by inode: a directory removed and made again is not the one mounted).
want_started=$(
  { sha256sum "$conf" | cut -d' ' -f1; for d in "${shared_dirs[@]}"; do echo "$d $(stat -c '%d:%i' "$d")"; done; } |
    sha256sum | cut -d' ' -f1
)
if answers; then
  [ "$(cat "$started_file" 2>/dev/null)" = "$want_started" ] && exit 0
  say "restarting the daemons of $root for a changed qemu.conf or shared directory"
fi
stop_daemons

# Left over from daemons that no longer run (a machine restart kills them without cleanup).
rm -f "$root"/run/libvirtd.pid "$root"/run/virtlogd.pid "$root"/run/libvirt/*-sock \
  "$root"/run/libvirt/*-sock-ro "$started_file"

say "starting virtlogd + libvirtd chrooted in $root"
mounts="mount --rbind /dev '$root/dev' && mount -t proc proc '$root/proc' && mount --rbind /sys '$root/sys'"
for d in "${shared_dirs[@]}"; do
  mounts+=" && mount --bind '$d' '$root$d'"
done
# 8>&-: the daemons must not inherit (and hold forever) the setup lock.
unshare --mount --propagation private bash -c \
  "$mounts && chroot '$root' /usr/sbin/virtlogd -d && chroot '$root' /usr/sbin/libvirtd -d" \
  </dev/null >>"$root/var/log/pulumi-tdx-daemons.log" 2>&1 8>&-

for _ in $(seq 300); do
  if answers; then
    echo "$want_started" >"$started_file"
    exit 0
  fi
  sleep 0.1
done
say "libvirtd did not answer on $uri" >&2
virsh -c "$uri" version
exit 1
