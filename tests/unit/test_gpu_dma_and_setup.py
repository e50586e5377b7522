"""VFIO DMA entry limit handling and the user's GPU setup command."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import pytest

from tdx_provider.errors import InputError, TdxError
from tdx_provider.host.gpu import DMA_ENTRY_LIMIT_PARAM, ensure_dma_entry_limit, run_setup_command
from tdx_provider.validation import PciAddress

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
H100_DMA_ENTRY_LIMIT = 0x200000
GPU_A = PciAddress(0, 0x3B, 0, 0)
GPU_B = PciAddress(0, 0x86, 0, 0)


@pytest.fixture
def sysfs_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    shutil.copytree(FIXTURES / "sysfs-tdx-ready", root)
    return root


def dma_limit_file(root: Path) -> Path:
    return root / DMA_ENTRY_LIMIT_PARAM


# --- dma_entry_limit -------------------------------------------------------------------------


def test_fixture_starts_at_the_kernel_default(sysfs_root: Path) -> None:
    assert dma_limit_file(sysfs_root).read_text().strip() == "65535"


def test_lower_limit_is_raised_to_the_wanted_value(sysfs_root: Path) -> None:
    assert ensure_dma_entry_limit(H100_DMA_ENTRY_LIMIT, sysfs_root) == H100_DMA_ENTRY_LIMIT
    assert int(dma_limit_file(sysfs_root).read_text()) == H100_DMA_ENTRY_LIMIT


def test_equal_limit_is_left_alone(sysfs_root: Path) -> None:
    before = dma_limit_file(sysfs_root).stat().st_mtime_ns
    assert ensure_dma_entry_limit(65535, sysfs_root) == 65535
    assert dma_limit_file(sysfs_root).stat().st_mtime_ns == before


def test_higher_limit_is_kept_not_lowered(sysfs_root: Path) -> None:
    dma_limit_file(sysfs_root).write_text("4194304\n")
    assert ensure_dma_entry_limit(H100_DMA_ENTRY_LIMIT, sysfs_root) == 4194304
    assert dma_limit_file(sysfs_root).read_text().strip() == "4194304"


def test_module_not_loaded_returns_none_and_creates_nothing(tmp_path: Path) -> None:
    assert ensure_dma_entry_limit(H100_DMA_ENTRY_LIMIT, tmp_path) is None
    assert not dma_limit_file(tmp_path).exists()


READ_ONLY_SYSFS_UINT = Path("/sys/devices/system/cpu/kernel_max")


def test_unwritable_parameter_raises_naming_the_parameter(sysfs_root: Path) -> None:
    # A sysfs attribute without a store method refuses writes even to root, like a parameter
    # of a module loaded without write permission.
    assert READ_ONLY_SYSFS_UINT.exists(), "every Linux sysfs has this read-only attribute"
    path = dma_limit_file(sysfs_root)
    path.unlink()
    path.symlink_to(READ_ONLY_SYSFS_UINT)
    with pytest.raises(TdxError, match=r"cannot raise /sys/module/vfio_iommu_type1/"):
        ensure_dma_entry_limit(H100_DMA_ENTRY_LIMIT, sysfs_root)


@pytest.mark.parametrize("wanted", [0, -1, 2**32])
def test_out_of_range_wanted_value_is_an_input_error(sysfs_root: Path, wanted: int) -> None:
    with pytest.raises(InputError, match="dma_entry_limit"):
        ensure_dma_entry_limit(wanted, sysfs_root)


# --- gpu_setup_command -----------------------------------------------------------------------


def test_setup_command_gets_the_bdfs_appended(tmp_path: Path) -> None:
    out = tmp_path / "args.txt"
    argv = ["/bin/sh", "-c", 'printf "%s\\n" "$@" > "$0"', str(out)]
    run_setup_command(argv, [GPU_A, GPU_B])
    assert out.read_text().splitlines() == ["0000:3b:00.0", "0000:86:00.0"]


def test_setup_command_arguments_are_not_shell_interpreted(tmp_path: Path) -> None:
    out = tmp_path / "args.txt"
    tricky = "x; touch " + str(tmp_path / "pwned")
    argv = [sys.executable, "-c", "import sys; open(sys.argv[1], 'w').write(sys.argv[2])",
            str(out), tricky]
    run_setup_command(argv, [])
    assert out.read_text() == tricky
    assert not (tmp_path / "pwned").exists()


def test_successful_setup_command_returns_none() -> None:
    assert run_setup_command(["/bin/true"], [GPU_A]) is None


def test_failing_setup_command_names_command_exit_code_and_stderr_tail() -> None:
    script = 'for i in $(seq 1 30); do echo "line $i" >&2; done; exit 7'
    with pytest.raises(TdxError) as caught:
        run_setup_command(["/bin/sh", "-c", script, "setup-gpus"], [GPU_A])
    message = str(caught.value)
    assert "exit code 7" in message
    assert "/bin/sh" in message
    assert "0000:3b:00.0" in message
    assert "line 30" in message
    assert "line 20" not in message


def test_setup_command_killed_by_signal_says_so() -> None:
    with pytest.raises(TdxError, match="signal 9"):
        run_setup_command(["/bin/sh", "-c", "kill -9 $$"], [])


def test_setup_command_that_hangs_times_out() -> None:
    with pytest.raises(TdxError, match=r"did not finish within 0\.5 s"):
        run_setup_command(["/bin/sh", "-c", "echo starting >&2; sleep 30"], [GPU_A], timeout=0.5)


def test_missing_setup_command_is_reported(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-setup-gpus.sh")
    with pytest.raises(TdxError, match="could not be started") as caught:
        run_setup_command([missing], [GPU_A])
    assert missing in str(caught.value)


def test_empty_setup_command_is_an_input_error() -> None:
    with pytest.raises(InputError, match="gpu_setup_command"):
        run_setup_command([], [GPU_A])


def test_timed_out_setup_command_leaves_no_children_behind(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = f'sleep 30 & echo $! > {pid_file}; wait'
    with pytest.raises(TdxError, match="did not finish"):
        run_setup_command(["/bin/sh", "-c", script], [], timeout=0.5)
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _is_running(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _is_running(child)


def _is_running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"
