# Sourced by the Makefile's scripts: where things live and how Pulumi runs offline.
# shellcheck shell=bash
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export REPO_ROOT
export PULUMI_TDX_CACHE="${PULUMI_TDX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pulumi-tdx}"
# The second libvirt host (scripts/setup-upstream-host.sh): current upstream libvirt from Debian
# sid, chrooted in this root, reached through its own socket.
export PULUMI_TDX_UPSTREAM_ROOT="${PULUMI_TDX_UPSTREAM_ROOT:-$PULUMI_TDX_CACHE/upstream-sid}"
export PULUMI_TDX_UPSTREAM_URI="${PULUMI_TDX_UPSTREAM_URI:-qemu:///system?socket=$PULUMI_TDX_UPSTREAM_ROOT/run/libvirt/libvirt-sock}"
export PATH="$REPO_ROOT/.venv/bin:$PATH"
# Local file backend, empty passphrase (the pickled provider is a secret), no update checks.
export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$REPO_ROOT/.pulumi}"
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-}"
export PULUMI_SKIP_UPDATE_CHECK=true
# Our package is named pulumi-tdx, so the Python language host looks for a "tdx" resource plugin
# and, without this, tries (and fails) to download it on every command (~2.5 s each, offline).
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_DIY_BACKEND_NO_LEGACY_WARNING=true
# qemu+ssh:// to this machine (scripts/setup-sshd.sh): our own sshd on 127.0.0.1, a client key
# made by setup, and its host key in /etc/ssh/ssh_known_hosts, so ssh verifies it like any host.
export PULUMI_TDX_SSH_DIR="${PULUMI_TDX_SSH_DIR:-$PULUMI_TDX_CACHE/ssh}"
export PULUMI_TDX_SSH_PORT="${PULUMI_TDX_SSH_PORT:-2222}"
export PULUMI_TDX_SSH_URI="${PULUMI_TDX_SSH_URI:-qemu+ssh://root@127.0.0.1:$PULUMI_TDX_SSH_PORT/system?keyfile=$PULUMI_TDX_SSH_DIR/id_ed25519}"
# The same host through libvirt's built-in libssh client, which takes the known_hosts file from
# the URI (the ssh transport runs the ssh binary, which reads only ssh's own known_hosts files).
export PULUMI_TDX_LIBSSH_URI="${PULUMI_TDX_LIBSSH_URI:-qemu+libssh://root@127.0.0.1:$PULUMI_TDX_SSH_PORT/system?keyfile=$PULUMI_TDX_SSH_DIR/id_ed25519&known_hosts=$PULUMI_TDX_SSH_DIR/known_hosts&sshauth=privkey}"
