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
  # ssh-keygen: the cloud-init seed tests make real SSH key pairs; sshd: the qemu+ssh:// transport
  # to this machine (scripts/setup-sshd.sh runs our own instance on 127.0.0.1)
  openssh-client openssh-server
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-host: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # No package may start its own daemon: we start libvirtd and our sshd (127.0.0.1 only) below.
  # Debian's openssh-server would otherwise start an sshd on every address where init scripts
  # run. Container images usually ship such a policy already; keep theirs when they do.
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# pulumi-tdx setup-host: no service starts during apt-get install\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    own_policy=1
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ "$own_policy" = 1 ]; then rm -f "$policy"; trap - EXIT; fi
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
answered=0
for _ in $(seq 100); do
  if virsh -c qemu:///system version >/dev/null 2>&1; then answered=1; break; fi
  sleep 0.1
done
if [ "$answered" = 0 ]; then
  echo "setup-host: libvirtd did not answer on qemu:///system" >&2
  virsh -c qemu:///system version
  exit 1
fi

# The remote transport: our sshd on 127.0.0.1, so qemu+ssh:// reaches this libvirtd.
bash "$(dirname "$0")/setup-sshd.sh"
