#!/usr/bin/env bash
# make demo: a real `pulumi up` of the quickstart (root Pulumi.yaml) on this machine's libvirtd,
# with the tiny test guest as the image. This host has no TDX, so the demo runs a regular VM
# (tdx=false) under TCG (domain type qemu); on a TDX host set tdx=true, domainType=kvm, firmware.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$REPO_ROOT"
stack=${DEMO_STACK:-demo}
guest="$PULUMI_TDX_CACHE/guest"
mkdir -p "$REPO_ROOT/.pulumi" /var/lib/pulumi-tdx

pulumi login --local >/dev/null 2>&1 || true
pulumi stack select "$stack" 2>/dev/null || pulumi stack init "$stack"
pulumi config set baseImage "$guest/base.qcow2"
pulumi config set tdx false
pulumi config set domainType qemu
pulumi config set kernel "$guest/vmlinuz"
pulumi config set initrd "$guest/initramfs.cpio.gz"
pulumi config set cmdline "console=ttyS0 loglevel=4"
pulumi config set memoryMib 256
pulumi config set vcpus 1
pulumi config set network none
pulumi config set vsock false
pulumi config set poolName tdx-demo
pulumi config set poolPath /var/lib/pulumi-tdx/demo
pulumi config set consoleLog /var/lib/pulumi-tdx/demo-console.log

pulumi up --yes --skip-preview=false
echo
pulumi stack output
echo
echo "Connect:      \$(pulumi stack output ssh)   (the test guest only prints an SSH banner)"
echo "Tear it down: make demo-destroy"
