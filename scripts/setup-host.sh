#!/usr/bin/env bash
# Host prerequisites for pulumi-tdx: Debian packages, a qemu.conf that lets QEMU read our
# images, and libvirtd + virtlogd running (there is no systemd on our machines).
# Idempotent: on a prepared host it only checks and returns.
set -euo pipefail

packages=(
  libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients libvirt-dev pkg-config
  qemu-system-x86 qemu-utils ovmf
  # the tiny test guest: kernel, busybox userland, initramfs packing
  linux-image-cloud-amd64 busybox-static cpio gzip
  # ssh-keygen: the cloud-init seed tests make real SSH key pairs
  openssh-client
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-host: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# QEMU runs as root without a security driver: our images live in pools we create
# anywhere on disk, and there is no AppArmor/SELinux labelling on these hosts.
conf=/etc/libvirt/qemu.conf
marker="# pulumi-tdx settings"
changed=0
if ! grep -qF "$marker" "$conf"; then
  printf '\n%s\nuser = "root"\ngroup = "root"\nsecurity_driver = "none"\n' "$marker" >>"$conf"
  changed=1
fi

libvirtd_running() { pgrep -x libvirtd >/dev/null; }
if [ "$changed" = 1 ] && libvirtd_running; then
  echo "setup-host: restarting libvirtd for the new qemu.conf"
  pkill -x libvirtd || true
  for _ in $(seq 50); do libvirtd_running || break; sleep 0.1; done
fi
pgrep -x virtlogd >/dev/null || virtlogd -d
pgrep -x virtlockd >/dev/null || { command -v virtlockd >/dev/null && virtlockd -d; } || true
libvirtd_running || libvirtd -d

# Wait for the daemon to answer (it takes a moment to open its socket).
for _ in $(seq 100); do
  if virsh -c qemu:///system version >/dev/null 2>&1; then exit 0; fi
  sleep 0.1
done
echo "setup-host: libvirtd did not answer on qemu:///system" >&2
virsh -c qemu:///system version
