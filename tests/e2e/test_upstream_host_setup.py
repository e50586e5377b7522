"""scripts/setup-upstream-host.sh keeps the upstream libvirt host running, whatever it finds.

The shared upstream host serves every test run on the machine, so these tests never stop it:
they run the script on a twin root (the sid root's /usr hard-linked, the rest copied, no
domains or pools) that only this test uses, and signal only the daemons chrooted in the twin.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import libvirt
import pytest

from tests.e2e.conftest import E2E_PREFIX
from tests.support.hosts import upstream_root
from tests.support.stack import REPO_ROOT

pytestmark = pytest.mark.e2e
SCRIPT = REPO_ROOT / "scripts" / "setup-upstream-host.sh"
# Copied as they are; /usr is hard-linked (read-only for the daemons), the rest starts empty.
COPIED = ("etc", "var", "root", "bin", "lib", "lib64", "sbin", ".pulumi-tdx-stamp")
EMPTY = ("dev", "proc", "sys", "run", "tmp")


def daemons_in(root: Path) -> list[int]:
    """PIDs of the processes chrooted in ``root``."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if (proc / "root").readlink() == root:
                    pids.append(int(proc.name))
            except OSError:
                continue
    return sorted(pids)


@dataclass
class Twin:
    root: Path

    @property
    def uri(self) -> str:
        return f"qemu:///system?socket={self.root}/run/libvirt/libvirt-sock"

    def setup(self) -> str:
        env = {**os.environ, "PULUMI_TDX_UPSTREAM_ROOT": str(self.root),
               "PULUMI_TDX_UPSTREAM_URI": self.uri}
        proc = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True,
                              timeout=300, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout + proc.stderr

    def answers(self) -> str:
        conn = libvirt.open(self.uri)
        try:
            version = conn.getLibVersion()
        finally:
            conn.close()
        return f"{version // 1_000_000}.{version // 1000 % 1000}"

    def kill(self, sig: int = signal.SIGKILL) -> None:
        for pid in daemons_in(self.root):
            os.kill(pid, sig)
        deadline = time.monotonic() + 30
        while daemons_in(self.root) and time.monotonic() < deadline:
            time.sleep(0.1)


@pytest.fixture
def twin() -> Iterator[Twin]:
    source = upstream_root()
    assert (source / ".pulumi-tdx-stamp").is_file(), f"no upstream root at {source}: make setup"
    # Beside the real root: hard links need the same filesystem.
    root = source.parent / f"{E2E_PREFIX}twin"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    twin = Twin(root)
    try:
        subprocess.run(["cp", "-al", str(source / "usr"), str(root / "usr")], check=True)
        for name in COPIED:
            if (source / name).exists() or (source / name).is_symlink():
                subprocess.run(["cp", "-a", str(source / name), str(root / name)], check=True)
        for name in EMPTY:
            (root / name).mkdir(exist_ok=True)
        # none of the real host's domains, pools or networks
        for kind in ("qemu", "storage", "network"):
            for item in (root / "etc" / "libvirt" / kind).glob("**/*.xml"):
                item.unlink()
        yield twin
    finally:
        twin.kill()
        shutil.rmtree(root, ignore_errors=True)
        Path(f"{root}.lock").unlink(missing_ok=True)  # the script's lock beside its root


def test_setup_starts_a_host_leaves_it_alone_recovers_from_a_restart_and_applies_qemu_conf(
    twin: Twin,
) -> None:
    # first run: starts the daemons
    assert "starting" in twin.setup()
    assert int(twin.answers().split(".")[0]) >= 11  # the sid libvirt, not Debian 12's 9.0
    first = daemons_in(twin.root)
    assert len(first) == 2  # virtlogd and libvirtd

    # second run: a host that answers is left alone, quietly
    assert twin.setup() == ""
    assert daemons_in(twin.root) == first

    # a machine restart: the daemons are gone, their sockets and pid files are not
    twin.kill()
    assert (twin.root / "run" / "libvirt" / "libvirt-sock").exists()
    assert (twin.root / "run" / "libvirtd.pid").exists()
    assert "starting" in twin.setup()
    twin.answers()
    restarted = daemons_in(twin.root)
    assert len(restarted) == 2 and not set(restarted) & set(first)

    # a changed qemu.conf restarts them
    conf = twin.root / "etc" / "libvirt" / "qemu.conf"
    conf.write_text(conf.read_text() + '\nlog_timestamp = 1\n')
    out = twin.setup()
    assert "for a changed qemu.conf" in out, out
    twin.answers()
    again = daemons_in(twin.root)
    assert len(again) == 2 and not set(again) & set(restarted)
    assert twin.setup() == ""
