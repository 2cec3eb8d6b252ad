"""Publish a directory atomically: write it as a hidden sibling, sync it, swap it in.

An interrupted writer leaves the old directory or the new one, never half of one; what a
killed writer left hidden is tidied by the next one. Used by ``export``.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import secrets
import shutil
import sys
from pathlib import Path


def make_temp_dir(output: Path) -> Path:
    """A hidden sibling of ``output`` named after this process (so a later export can tell it
    is stale), created with the umask's permissions (``tempfile.mkdtemp`` would make it 0700)."""
    while True:
        tmp = output.with_name(f".{output.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            tmp.mkdir()
            return tmp
        except FileExistsError:
            continue


def sync_dir(directory: Path) -> None:
    """fsync every file in ``directory`` and the directory itself, so the rename that publishes
    it cannot reach the disk before its contents."""
    for path in directory.iterdir():
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    _fsync_directory(directory)


def swap_into_place(tmp: Path, output: Path) -> None:
    """Put ``tmp`` at ``output``: an atomic exchange if ``output`` exists, else a rename."""
    if output.exists() and _exchange(tmp, output):
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the old model
    elif output.exists():
        # No atomic exchange here: move the old model aside, then the new one in. A kill between
        # the two renames leaves the old model at .NAME.old-PID; the next export restores it.
        old = output.with_name(f".{output.name}.old-{os.getpid()}")
        os.replace(output, old)
        os.replace(tmp, output)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, output)
    _fsync_directory(output.parent)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False if unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # no libc symbol (old glibc, musl)
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # kernel or filesystem lacks it
        return False
    raise OSError(err, os.strerror(err), str(b))


def _fsync_directory(directory: Path) -> None:
    """Best effort: not every OS or filesystem can open or fsync a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def tidy_after_killed_exports(output: Path) -> None:
    """Remove what exports killed before finishing left beside ``output`` (hidden temporary
    directories of processes that no longer run) and, if one was killed between the two
    renames of the fallback swap, put the old model back."""
    if not output.parent.is_dir():
        return
    pattern = re.compile(rf"\.{re.escape(output.name)}\.(tmp|old)-(\d+)(-[0-9a-f]+)?")
    for sibling in sorted(output.parent.iterdir()):
        found = pattern.fullmatch(sibling.name)
        if found is None or _process_alive(int(found[2])):
            continue
        if found[1] == "old" and not output.exists():
            os.replace(sibling, output)
        else:
            shutil.rmtree(sibling, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True
