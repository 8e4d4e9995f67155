"""fsutil: a full disk is one line that names the device and the file, and leaves nothing behind; a
folder lock keeps a second process out and is released when its holder is killed."""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from faceswap_lite.fsutil import (
    DiskFullError,
    FolderLock,
    FolderLockedError,
    check_output_folder,
    write_atomic,
)
from tests.helpers import fill, read_only, small_disk


def test_full_disk_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", megabytes=1) as disk:
        with pytest.raises(DiskFullError) as err:
            write_atomic(disk / "big.bin", lambda fh: fh.write(b"x" * 3 * 2**20))
        message = err.value.message
        assert "\n" not in message
        assert "no space left on" in message and str(disk / "big.bin") in message
        assert "MB needed" in message
        assert list(disk.iterdir()) == []  # no temporary, no half file


def test_file_size_limit_is_the_same_error(tmp_path: Path) -> None:
    """The same error where no small file system can be mounted: a file-size limit (EFBIG)."""
    script = textwrap.dedent(f"""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2**20, 2**20))
        from faceswap_lite.fsutil import DiskFullError, write_atomic
        try:
            write_atomic({str(tmp_path / 'big.bin')!r}, lambda fh: fh.write(b"x" * 3 * 2**20))
        except DiskFullError as exc:
            print(exc.message)
            sys.exit(7)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 7, out.stderr
    assert "no space left on" in out.stdout
    assert list(tmp_path.iterdir()) == []


HOLD = textwrap.dedent("""
    import sys, time
    from faceswap_lite.fsutil import FolderLock
    with FolderLock(sys.argv[1], "run"):
        print("locked", flush=True)
        time.sleep(60)
""")


def test_lock_refuses_a_second_process_and_frees_on_kill(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(FolderLockedError) as err, FolderLock(tmp_path, "run"):
            pass
        assert f"process {holder.pid}" in err.value.message
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
    deadline = time.time() + 10
    while True:  # the kernel drops the lock with the process: no stale lock file to remove
        try:
            with FolderLock(tmp_path, "run"):
                break
        except FolderLockedError:
            assert time.time() < deadline
            time.sleep(0.05)


# ---------------------------------------------------------------------------------------------
# The check before writing: probed for real (root too), and nothing left behind.


def test_output_check_probes_for_real_and_leaves_nothing(tmp_path: Path) -> None:
    check_output_folder(tmp_path, OSError)
    check_output_folder(tmp_path / "new" / "deeper", OSError)
    assert list(tmp_path.iterdir()) == []  # no probe file, no folder made
    with read_only(tmp_path / "ro") as ro:  # as root too: a read-only mount, where os.access says yes
        with pytest.raises(OSError, match="is not writable"):
            check_output_folder(ro, OSError)
        with pytest.raises(OSError, match="cannot be created: .* is not writable"):
            check_output_folder(ro / "new", OSError)
        assert list(ro.iterdir()) == []


PROBE_AS_NOBODY = textwrap.dedent("""
    import os, sys
    from faceswap_lite.fsutil import check_output_folder
    os.setresuid(0, 65534, 0)  # writes as nobody; os.access asks for the real user, root
    assert os.access(sys.argv[1], os.W_OK | os.X_OK)
    try:
        check_output_folder(sys.argv[1], OSError)
    except OSError as exc:
        print(exc)
        sys.exit(7)
""")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0, reason="switching users needs root")
def test_output_check_asks_the_system_not_os_access() -> None:
    """Where os.access says yes and a write fails (another effective user than the real one), the
    probe says no."""
    folder = Path(tempfile.mkdtemp(prefix="faceswap-lite-probe-"))  # in /tmp: nobody can reach it
    try:
        folder.chmod(0o755)  # root's: nobody may look, not write
        out = subprocess.run([sys.executable, "-c", PROBE_AS_NOBODY, str(folder)], capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 7, out.stdout + out.stderr
        assert "is not writable (Permission denied)" in out.stdout
        assert list(folder.iterdir()) == []
    finally:
        shutil.rmtree(folder)


def test_output_check_on_a_full_disk_is_the_disk_full_error(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", megabytes=1) as disk:
        fill(disk)
        with pytest.raises(DiskFullError, match="no space left on"):
            check_output_folder(disk / "out", OSError)
        assert [p.name for p in disk.iterdir()] == [".filler"]


def test_disk_full_error_pickles_back_from_a_worker() -> None:
    err = DiskFullError("no space left on /x writing /x/f.png", "free some space")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is DiskFullError and back.message == err.message and back.reason == err.reason
