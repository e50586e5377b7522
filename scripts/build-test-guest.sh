#!/usr/bin/env bash
# Build the tiny bootable test guest used by the libvirt and e2e tests:
#   vmlinuz            Debian's cloud kernel (small, boots fast under TCG)
#   initramfs.cpio.gz  busybox-static userland with the /init below
#   base.qcow2         a small qcow2 holding a little real data, so a backing chain means something
# Everything comes from packages already installed by scripts/setup-host.sh: nothing is downloaded.
# Idempotent: a stamp records what the outputs were built from, and an up-to-date run returns at once.
#
# usage: scripts/build-test-guest.sh [CACHE_DIR]
set -euo pipefail

cache_dir=${1:-${PULUMI_TDX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pulumi-tdx}/guest}
# Outputs must not be world-writable, whatever the caller's umask.
umask 022

# --- inputs -------------------------------------------------------------------------------------

# The newest installed cloud kernel that also has its modules tree (we copy .ko files from it).
kver=""
for k in $(ls /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sed 's|^/boot/vmlinuz-||' | sort -V); do
  [ -d "/lib/modules/$k" ] && kver=$k
done
if [ -z "$kver" ]; then
  echo "build-test-guest: no /boot/vmlinuz-*-cloud-amd64 with /lib/modules; run scripts/setup-host.sh" >&2
  exit 1
fi
kernel=/boot/vmlinuz-$kver
busybox=/bin/busybox
applets=$("$busybox" --list 2>/dev/null || true)
if ! grep -qx acpid <<<"$applets"; then
  echo "build-test-guest: $busybox (busybox-static) missing; run scripts/setup-host.sh" >&2
  exit 1
fi

# Modules /init loads. Their dependencies come from the kernel's modules.dep and are loaded first
# (busybox insmod does not resolve them); any that this kernel has built in are skipped.
# isofs: the ISO 9660 cloud-init seed (cidata) on a second virtio disk.
modules=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
         failover net_failover virtio_net virtio_blk button evdev isofs)

# base.qcow2: 64 MiB virtual, with patterned data at a few offsets (qemu-io can read it back).
base_size=64M
base_writes=("write -P 0xa5 0 1M" "write -P 0x5a 8M 512k" "write -P 0x3c 63M 1M")

# --- guest files (their text is part of the stamp) ----------------------------------------------

# PID 1. The marker lines are a contract with tests/support/guest.py: keep them in sync.
read -r -d '' guest_init <<'EOF' || true
#!/bin/sh
# PID 1 of the pulumi-tdx test guest. It must never exit: the kernel panics if init dies.
export PATH=/bin
say() { echo "pulumi-tdx-guest: $*"; }

# The initramfs has no /dev/console node, so the kernel could not give us a console: take it now.
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
# acpid needs /var/run (pid file) and /var/log (log file).
mkdir -p /var/run /var/log /tmp

# The drivers this kernel builds as modules (virtio disk/net, ACPI button, evdev), in dependency order.
for m in $(cat /etc/modules); do
  insmod "/lib/modules/$m.ko" || say "insmod $m failed"
done

cmdline=" $(cat /proc/cmdline) "

# Show the disk's size and first byte (0xa5 in base.qcow2): proves virtio-blk and the backing chain.
if [ -b /dev/vda ]; then
  say "disk vda $(cat /sys/block/vda/size) sectors, first byte $(head -c1 /dev/vda | hexdump -e '1/1 "%02x"')"
fi

# A cloud-init NoCloud seed: found by its label, as cloud-init finds it. Show what cloud-init would
# apply from it: the instance-id, the host name (set here too) and every SSH public key it declares.
# busybox's findfs knows no ISO 9660, so the label is read from the primary volume descriptor.
iso_label() {
  [ "$(dd if="$1" bs=1 skip=32769 count=5 2>/dev/null)" = CD001 ] || return 0
  dd if="$1" bs=1 skip=32808 count=32 2>/dev/null | tr -d ' '
}
seed=""
for dev in /dev/vd?; do
  if [ -b "$dev" ] && [ "$(iso_label "$dev")" = cidata ]; then seed=$dev; break; fi
done
if [ -n "$seed" ]; then
  mkdir -p /run/cidata
  if mount -t iso9660 -o ro "$seed" /run/cidata; then
    say "seed $seed: $(ls /run/cidata | tr '\n' ' ')"
    say "seed instance-id $(sed -n 's/^instance-id: *//p' /run/cidata/meta-data)"
    name=$(sed -n 's/^local-hostname: *//p' /run/cidata/meta-data)
    if [ -n "$name" ]; then
      hostname "$name"
      say "hostname $(hostname)"
    fi
    mkdir -p /root/.ssh
    grep -oE '(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-[a-z0-9-]+@openssh[.]com) [A-Za-z0-9+/]+=*' \
      /run/cidata/user-data | sort -u >/root/.ssh/authorized_keys
    while read -r type key; do say "ssh key $type $key"; done </root/.ssh/authorized_keys
    umount /run/cidata
  else
    say "seed $seed does not mount"
  fi
fi

ifconfig lo 127.0.0.1 netmask 255.0.0.0 up
# QEMU user networking answers DHCP with 10.0.2.15. Bounded (-n: give up after -t tries) so a
# guest without a network still boots; the address stays configured after udhcpc quits (-q).
if [ -e /sys/class/net/eth0 ]; then
  ifconfig eth0 up
  udhcpc -f -q -n -t 5 -T 1 -i eth0 -s /etc/udhcpc.script >/var/log/udhcpc.log 2>&1 \
    || say "eth0: no DHCP lease"
else
  say "no eth0"
fi

# A fake sshd: every connection to port 22 gets the banner (-ll: keep listening after each one).
nc -ll -p 22 -e /bin/ssh-banner >/var/log/ssh-banner.log 2>&1 &

# Power button -> /etc/acpi/PWRF/00000080 (see /etc/acpi.map and /etc/acpid.conf).
case "$cmdline" in
  *" pulumi_tdx_guest.ignore_acpi=1 "*)
    say "ignoring acpi" ;;
  *)
    # acpid opens /dev/input/event0.. once at start, so the button's node must exist first.
    n=0
    while [ ! -e /dev/input/event0 ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
    acpid -c /etc/acpi -a /etc/acpid.conf -M /etc/acpi.map -l /var/log/acpid.log \
      || say "acpid failed" ;;
esac

# Printed last, so a test that saw it can rely on DHCP, the banner and acpid being up.
say "userspace reached"

# Sleeping in a loop also reaps orphaned children (ash waits for any child).
while :; do sleep 3600; done
EOF

read -r -d '' guest_udhcpc <<'EOF' || true
#!/bin/sh
# udhcpc event hook: apply the lease (busybox ships no default script in busybox-static).
case "$1" in
  deconfig)
    ifconfig "$interface" 0.0.0.0 up ;;
  bound|renew)
    ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}" up
    for r in $router; do route add default gw "$r" dev "$interface" 2>/dev/null; break; done
    : >/etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >>/etc/resolv.conf; done
    echo "pulumi-tdx-guest: $interface $ip" >/dev/console ;;
esac
exit 0
EOF

read -r -d '' guest_banner <<'EOF' || true
#!/bin/sh
# stdin/stdout are the TCP connection (nc -e).
printf 'SSH-2.0-pulumi-tdx-test-guest\r\n'
# Drain what a real client sends (its own version line) before closing, so the close is a FIN and
# not a RST that could discard the banner on the client side. Returns at once when the client closes.
timeout 2 cat >/dev/null 2>&1
exit 0
EOF

read -r -d '' guest_poweroff <<'EOF' || true
#!/bin/sh
# Run by acpid on the power button. acpid's own output goes to its log, so write to the console.
echo "pulumi-tdx-guest: acpi power button, powering off" >/dev/console
sync
poweroff -f
EOF

# busybox acpid: input event -> description (map), description keyword -> action path under -c DIR.
read -r -d '' guest_acpi_map <<'EOF' || true
EV_KEY 01 KEY_POWER 116 1 button/power PWRF 00000080
EOF
read -r -d '' guest_acpid_conf <<'EOF' || true
PWRF PWRF/00000080
EOF

# --- up to date? ----------------------------------------------------------------------------------

# Any change to the kernel, busybox, module list or guest text rebuilds vmlinuz + initramfs.
boot_stamp=$(
  {
    echo "format 1"
    echo "kernel $kver $(stat -c '%s %Y' "$kernel")"
    echo "busybox $(stat -c '%s %Y' "$busybox")"
    echo "modules ${modules[*]}"
    printf '%s\n' "$guest_init" "$guest_udhcpc" "$guest_banner" "$guest_poweroff" \
      "$guest_acpi_map" "$guest_acpid_conf"
  } | sha256sum | cut -d' ' -f1
)
# The base image is rebuilt only when its own spec changes: existing overlays may point at it.
base_stamp=$(printf '%s\n' "format 1" "$base_size" "${base_writes[@]}" | sha256sum | cut -d' ' -f1)

up_to_date() {
  [ -f "$cache_dir/vmlinuz" ] && [ -f "$cache_dir/initramfs.cpio.gz" ] && [ -f "$cache_dir/base.qcow2" ] &&
    [ "$(cat "$cache_dir/.stamp-boot" 2>/dev/null)" = "$boot_stamp" ] &&
    [ "$(cat "$cache_dir/.stamp-base" 2>/dev/null)" = "$base_stamp" ]
}
if up_to_date; then
  exit 0
fi

mkdir -p "$cache_dir"
# Two builds at once (parallel make, two test runs) must not interleave.
exec 9>"$cache_dir/.lock"
flock 9
if up_to_date; then
  exit 0
fi

work=$(mktemp -d "$cache_dir/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- vmlinuz + initramfs --------------------------------------------------------------------------

if [ "$(cat "$cache_dir/.stamp-boot" 2>/dev/null)" != "$boot_stamp" ] ||
   [ ! -f "$cache_dir/vmlinuz" ] || [ ! -f "$cache_dir/initramfs.cpio.gz" ]; then
  echo "build-test-guest: building kernel $kver + initramfs in $cache_dir"
  root=$work/root
  mkdir -p "$root"/{bin,dev,proc,sys,etc/acpi/PWRF,lib/modules,var/run,var/log,tmp}

  # busybox-static needs no libraries; one symlink per applet makes the shell scripts plain.
  cp "$busybox" "$root/bin/busybox"
  for applet in $applets; do
    [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
  done

  # Copy only what is a module in this kernel; built-ins need nothing; anything else is an error.
  moddir=/lib/modules/$kver
  # Each wanted module after its dependencies (depth first over modules.dep), each once.
  ordered=()
  add_module() {
    local m=$1 line dep
    case " ${ordered[*]} " in *" $m "*) return 0 ;; esac
    line=$(grep -m1 -E "^[^:]*(^|/)${m}\.ko(\.xz|\.zst|\.gz)?:" "$moddir/modules.dep" || true)
    for dep in ${line#*:}; do
      dep=${dep##*/}
      add_module "${dep%%.ko*}"
    done
    ordered+=("$m")
  }
  for m in "${modules[@]}"; do add_module "$m"; done
  : >"$root/etc/modules"
  for m in "${ordered[@]}"; do
    rel=$(grep -m1 -oE "^[^:]*(^|/)${m}\.ko(\.xz|\.zst|\.gz)?:" "$moddir/modules.dep" | cut -d: -f1 || true)
    if [ -z "$rel" ]; then
      if grep -qE "(^|/)${m}\.ko$" "$moddir/modules.builtin"; then
        continue
      fi
      echo "build-test-guest: module $m is neither a module nor built into $kver" >&2
      exit 1
    fi
    # The guest's busybox insmod takes plain .ko files: decompress here, at build time.
    case "$rel" in
      *.ko.xz) xz -dc "$moddir/$rel" >"$root/lib/modules/$m.ko" ;;
      *.ko.zst) zstd -qdc "$moddir/$rel" >"$root/lib/modules/$m.ko" ;;
      *.ko.gz) gzip -dc "$moddir/$rel" >"$root/lib/modules/$m.ko" ;;
      *) cp "$moddir/$rel" "$root/lib/modules/$m.ko" ;;
    esac
    echo "$m" >>"$root/etc/modules"
  done

  printf '%s\n' "$guest_init" >"$root/init"
  printf '%s\n' "$guest_udhcpc" >"$root/etc/udhcpc.script"
  printf '%s\n' "$guest_banner" >"$root/bin/ssh-banner"
  printf '%s\n' "$guest_poweroff" >"$root/etc/acpi/PWRF/00000080"
  printf '%s\n' "$guest_acpi_map" >"$root/etc/acpi.map"
  printf '%s\n' "$guest_acpid_conf" >"$root/etc/acpid.conf"
  chmod 0755 "$root/init" "$root/etc/udhcpc.script" "$root/bin/ssh-banner" "$root/etc/acpi/PWRF/00000080"

  (cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
    cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -9n >"$work/initramfs.cpio.gz"
  install -m 0644 "$kernel" "$work/vmlinuz"
  chmod 0644 "$work/initramfs.cpio.gz"
  # mv within one filesystem is atomic: a reader sees the old or the new file, never half of one.
  mv -f "$work/vmlinuz" "$cache_dir/vmlinuz"
  mv -f "$work/initramfs.cpio.gz" "$cache_dir/initramfs.cpio.gz"
  echo "$boot_stamp" >"$work/stamp-boot"
  chmod 0644 "$work/stamp-boot"
  mv -f "$work/stamp-boot" "$cache_dir/.stamp-boot"
fi

# --- base.qcow2 -------------------------------------------------------------------------------------

if [ "$(cat "$cache_dir/.stamp-base" 2>/dev/null)" != "$base_stamp" ] || [ ! -f "$cache_dir/base.qcow2" ]; then
  echo "build-test-guest: building base.qcow2 ($base_size) in $cache_dir"
  qemu-img create -q -f qcow2 "$work/base.qcow2" "$base_size"
  io_args=()
  for w in "${base_writes[@]}"; do io_args+=(-c "$w"); done
  qemu-io -f qcow2 "${io_args[@]}" "$work/base.qcow2" >/dev/null
  chmod 0644 "$work/base.qcow2"
  mv -f "$work/base.qcow2" "$cache_dir/base.qcow2"
  echo "$base_stamp" >"$work/stamp-base"
  chmod 0644 "$work/stamp-base"
  mv -f "$work/stamp-base" "$cache_dir/.stamp-base"
fi
