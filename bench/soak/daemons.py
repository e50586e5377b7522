"""The libvirt daemon a soak runs against: always one the soak started itself.

- ``debian``: this machine's libvirt (Debian 12, libvirt 9.0) as a private daemon in its own
  mount namespace (:class:`tests.support.private_libvirtd.PrivateLibvirtd`).
- ``upstream``: the upstream libvirt of the sid root that ``scripts/setup-upstream-host.sh``
  builds, started a second time, chrooted in that root but in a mount namespace of its own whose
  ``/etc/libvirt``, ``/run/libvirt``, ``/var/lib/libvirt``, ``/var/log/libvirt`` and
  ``/var/cache/libvirt`` are the soak's directories. It shares the root's binaries with the
  shared upstream daemon and nothing else: its own socket, state, domains and pools, so the
  soak may restart it while other users keep the shared one.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.guest import cache_dir
from tests.support.hosts import upstream_root
from tests.support.private_libvirtd import BINDS, COPIED_CONFIG, PrivateLibvirtd

# Runs inside the new mount namespace: the chroot's /dev, /proc and /sys, the directories both
# hosts see at the same path, the private libvirt directories; then chroot and become libvirtd.
_CHROOT_BOOTSTRAP = """
import os, subprocess, sys
sysroot, binds = sys.argv[1], sys.argv[2:]
def mount(*args):
    subprocess.run(["mount", *args], check=True)
mount("--rbind", "/dev", sysroot + "/dev")
mount("-t", "proc", "proc", sysroot + "/proc")
mount("--rbind", "/sys", sysroot + "/sys")
for pair in binds:
    source, target = pair.split("=", 1)
    os.makedirs(sysroot + target, exist_ok=True)
    mount("--bind", source, sysroot + target)
os.chroot(sysroot)
os.chdir("/")
os.execv("/usr/sbin/libvirtd", ["/usr/sbin/libvirtd", "--pid-file", "/run/libvirt/libvirtd.pid"])
"""


class ChrootedLibvirtd(PrivateLibvirtd):
    """A private libvirtd chrooted in ``sysroot`` (see the module docstring)."""

    def __init__(self, root: Path, sysroot: Path, shared_dirs: tuple[Path, ...]) -> None:
        super().__init__(root)
        self.sysroot = sysroot
        self.shared_dirs = shared_dirs

    def prepare(self) -> None:
        for name in BINDS:
            (self.root / name).mkdir(parents=True, exist_ok=True)
        for name in COPIED_CONFIG:
            source = self.sysroot / "etc" / "libvirt" / name
            if source.exists():
                shutil.copy(source, self.root / "etc" / name)
        with open(self.root / "etc" / "qemu.conf", "a") as conf:
            conf.write('\n# private soak daemon: no virtlogd in this namespace\n'
                       'stdio_handler = "file"\n')

    def start(self) -> None:
        if not (self.root / "etc" / "qemu.conf").exists():
            self.prepare()
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        binds = [f"{d}={d}" for d in self.shared_dirs]
        binds += [f"{self.root / name}={target}" for name, target in BINDS.items()]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", sys.executable, "-c",
                 _CHROOT_BOOTSTRAP, str(self.sysroot), *binds],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )
        self.wait_until_answering()


HOSTS = ("debian", "upstream")


def private_daemon(host: str, root: Path) -> PrivateLibvirtd:
    """A daemon of ``host``'s libvirt whose state lives under ``root`` (not started yet)."""
    if host == "debian":
        return PrivateLibvirtd(root)
    if host == "upstream":
        sysroot = upstream_root()
        if not (sysroot / "usr" / "sbin" / "libvirtd").exists():
            raise SystemExit(f"no upstream root at {sysroot}; run `make setup`")
        return ChrootedLibvirtd(root, sysroot, (Path("/var/tmp"), cache_dir()))
    raise SystemExit(f"unknown host {host!r}; choose one of {', '.join(HOSTS)}")


def host_of_uri(uri: str, upstream_uri: str) -> str | None:
    """``debian`` or ``upstream`` for the shared daemons' URIs, else None (a daemon we do not
    own: the soak then runs against it as is and never restarts it)."""
    if uri in ("qemu:///system", "qemu+unix:///system"):
        return "debian"
    if uri == upstream_uri:
        return "upstream"
    return None
