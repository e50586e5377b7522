"""A private libvirtd that a test may stop and restart without touching the host's daemon.

Restarting the system libvirtd would disturb everyone else using it (other test runs, other
people's guests). This runs a second, privileged libvirtd in its own mount namespace: its
config, state, runtime and log directories (``/etc/libvirt``, ``/var/lib/libvirt``,
``/run/libvirt``, ``/var/log/libvirt``, ``/var/cache/libvirt``) are bind mounts of directories
under ``root``, so it sees none of the host daemon's domains, pools or networks and the host
daemon sees none of its. Clients reach it through its own socket::

    qemu+unix:///system?socket=<root>/run/libvirt-sock

The copied ``qemu.conf`` keeps the host's QEMU user and security settings and adds
``stdio_handler = "file"`` (there is no virtlogd in the namespace). QEMU processes survive a
restart of this daemon exactly as they survive a restart of the real one, and the restarted
daemon reconnects to them through the state under ``root``.

Only the process this helper started is ever signalled, by its pid.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import libvirt

from tests.support.cleanup import remove_all

LIBVIRTD = shutil.which("libvirtd") or "/usr/sbin/libvirtd"
BINDS = {
    "etc": "/etc/libvirt",
    "run": "/run/libvirt",
    "lib": "/var/lib/libvirt",
    "log": "/var/log/libvirt",
    "cache": "/var/cache/libvirt",
}
COPIED_CONFIG = ("libvirtd.conf", "qemu.conf", "libvirt.conf")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0

# Runs inside the new mount namespace: bind the private directories, then become libvirtd.
_BOOTSTRAP = """
import os, subprocess, sys
binds, libvirtd = sys.argv[1:-1], sys.argv[-1]
for pair in binds:
    source, target = pair.split("=", 1)
    subprocess.run(["mount", "--bind", source, target], check=True)
# the default pid file, /run/libvirtd.pid, is the host daemon's: use one in our /run/libvirt
os.execv(libvirtd, [libvirtd, "--pid-file", "/run/libvirt/libvirtd.pid"])
"""


class PrivateLibvirtd:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    @property
    def socket(self) -> Path:
        return self.root / "run" / "libvirt-sock"

    @property
    def uri(self) -> str:
        return f"qemu+unix:///system?socket={self.socket}"

    @property
    def log(self) -> Path:
        return self.root / "daemon.log"

    def prepare(self) -> None:
        for name in BINDS:
            (self.root / name).mkdir(parents=True, exist_ok=True)
        for name in COPIED_CONFIG:
            source = Path("/etc/libvirt") / name
            if source.exists():
                shutil.copy(source, self.root / "etc" / name)
        with open(self.root / "etc" / "qemu.conf", "a") as conf:
            conf.write('\n# private test daemon: no virtlogd in this namespace\n'
                       'stdio_handler = "file"\n')

    def start(self) -> None:
        if not (self.root / "etc" / "qemu.conf").exists():
            self.prepare()
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        binds = [f"{self.root / name}={target}" for name, target in BINDS.items()]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", sys.executable, "-c",
                 _BOOTSTRAP, *binds, LIBVIRTD],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )
        self.wait_until_answering()

    def wait_until_answering(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"private libvirtd exited ({self.process.returncode}); "
                                   f"see {self.log}")
            try:
                conn = libvirt.open(self.uri)
                conn.getLibVersion()
                conn.close()
                return
            except libvirt.libvirtError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM our daemon (by its pid) and wait for it; its QEMU processes keep running."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def restart(self) -> float:
        """Stop and start again; return the seconds the daemon did not answer."""
        began = time.monotonic()
        self.stop()
        self.start()
        self.restarts += 1
        return time.monotonic() - began

    def remove_everything(self) -> None:
        """Destroy and undefine every domain, delete every volume and pool this daemon knows,
        then stop it. Everything in it is the test's."""
        if self.process is None or self.process.poll() is not None:
            self.start()
        with contextlib.closing(libvirt.open(self.uri)) as conn:
            remove_all(conn)
        self.stop()


def namespaces_available() -> bool:
    """True when this process may create mount namespaces (root with CAP_SYS_ADMIN)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True, check=False)
    return probe.returncode == 0
