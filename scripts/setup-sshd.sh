#!/usr/bin/env bash
# A private sshd on 127.0.0.1:$PULUMI_TDX_SSH_PORT, so that libvirt's qemu+ssh:// transport
# reaches this machine's libvirtd the way it reaches a remote host (issue 20, item 3).
#
# Everything lives in $PULUMI_TDX_SSH_DIR (default ~/.cache/pulumi-tdx/ssh): the client key
# (id_ed25519), the host key, authorized_keys, known_hosts and the sshd_config. Our own config
# file and AuthorizedKeysFile: the system's /etc/ssh/sshd_config and root's ~/.ssh are left alone,
# and a system sshd on port 22, if any, is not touched. The host key also goes into
# /etc/ssh/ssh_known_hosts (one line for [127.0.0.1]:PORT), because libvirt's ssh transport runs
# the ssh binary without a way to name a known_hosts file in the URI.
#
# No systemd here: sshd is started like libvirtd (scripts/setup-host.sh). It needs /run/sshd
# (its privilege-separation directory), which /run being a tmpfs loses on reboot.
# Idempotent: when the config is unchanged and our sshd answers, it only checks.
set -euo pipefail
source "$(dirname "$0")/env.sh"

dir="$PULUMI_TDX_SSH_DIR"
port="$PULUMI_TDX_SSH_PORT"
pidfile=/run/pulumi-tdx-sshd.pid
log() { printf 'setup-sshd: %s\n' "$*" >&2; }

mkdir -p "$dir"
chmod 700 "$dir"
[ -f "$dir/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C pulumi-tdx-client -f "$dir/id_ed25519"
[ -f "$dir/ssh_host_ed25519_key" ] || \
  ssh-keygen -q -t ed25519 -N '' -C pulumi-tdx-host -f "$dir/ssh_host_ed25519_key"
install -m 600 "$dir/id_ed25519.pub" "$dir/authorized_keys"

# The host key as ssh and libssh expect it for a non-default port.
host_entry="[127.0.0.1]:$port $(cut -d' ' -f1,2 "$dir/ssh_host_ed25519_key.pub")"
printf '%s\n' "$host_entry" >"$dir/known_hosts"
global=/etc/ssh/ssh_known_hosts
marker="# pulumi-tdx sshd ($dir)"
touch "$global"
if ! grep -qxF "$host_entry" "$global"; then
  # Drop our previous entry (another port or key), keep everything else.
  grep -vF -e "$marker" -e "[127.0.0.1]:$port " "$global" >"$global.tmp" || true
  printf '%s\n%s\n' "$marker" "$host_entry" >>"$global.tmp"
  chmod 644 "$global.tmp"
  mv "$global.tmp" "$global"
  log "host key of [127.0.0.1]:$port added to $global"
fi

config="$(cat <<EOF
# pulumi-tdx: sshd for qemu+ssh:// to this machine (scripts/setup-sshd.sh). Loopback only.
ListenAddress 127.0.0.1
Port $port
HostKey $dir/ssh_host_ed25519_key
PidFile $pidfile
AuthorizedKeysFile $dir/authorized_keys
AllowUsers root
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
X11Forwarding no
AllowTcpForwarding no
AllowAgentForwarding no
PrintMotd no
Subsystem sftp internal-sftp
EOF
)"
changed=0
if [ "$(cat "$dir/sshd_config" 2>/dev/null)" != "$config" ]; then
  printf '%s\n' "$config" >"$dir/sshd_config"
  changed=1
fi

our_sshd() {
  local pid
  pid="$(cat "$pidfile" 2>/dev/null)" || return 1
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = sshd ] && echo "$pid"
}
mkdir -p /run/sshd
chmod 755 /run/sshd
/usr/sbin/sshd -t -f "$dir/sshd_config"
if pid="$(our_sshd)" && [ "$changed" = 1 ]; then
  log "restarting our sshd ($pid) for the new config"
  kill "$pid"
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
fi
if ! our_sshd >/dev/null; then
  /usr/sbin/sshd -f "$dir/sshd_config"
  log "started sshd on 127.0.0.1:$port"
fi

# Wait until it answers with the key and host key that the URIs in env.sh name.
for _ in $(seq 50); do
  if ssh -F none -o BatchMode=yes -o StrictHostKeyChecking=yes -o "UserKnownHostsFile=$dir/known_hosts" \
      -o GlobalKnownHostsFile=/dev/null -o IdentitiesOnly=yes -i "$dir/id_ed25519" -p "$port" \
      root@127.0.0.1 true 2>/dev/null; then
    exit 0
  fi
  sleep 0.1
done
log "sshd does not answer on 127.0.0.1:$port"
ssh -F none -o BatchMode=yes -o "UserKnownHostsFile=$dir/known_hosts" -i "$dir/id_ed25519" \
  -p "$port" root@127.0.0.1 true
