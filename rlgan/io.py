"""Atomic file writes: a reader never sees a half-written file, a crash never loses the old one."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def make_directory(path: str | os.PathLike) -> Path:
    """Create the directory ``path`` and its parents (if missing) and return it.

    Raises:
        NotADirectoryError: ``path`` or one of its parents is an existing file (named).
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocking = next(parent for parent in (path, *path.parents) if parent.exists())
        raise NotADirectoryError(f"cannot create the directory {path}: {blocking} is a file") from None
    return path


#: Part of the name of :func:`atomic_path`'s temporary files (``.NAME.tmp.XXXXXXXX.SUFFIX``).
TEMPORARY = ".tmp."


def is_temporary(path: Path) -> bool:
    """Whether ``path`` is a temporary file of :func:`atomic_path` (one a killed writer left)."""
    return path.name.startswith(".") and TEMPORARY in path.name


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it over ``path``.

    The temporary file is in the same directory, so the rename is atomic on POSIX. On an
    exception the temporary file is removed and ``path`` is untouched; one left by a killed
    process is ignored by readers and removed by the directory's next :class:`DirectoryLock`.
    """
    path = Path(path)
    make_directory(path.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}{TEMPORARY}", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write(path: str | os.PathLike, write: Callable[[Path], Any]) -> None:
    """Call ``write(tmp_path)`` and move the result to ``path`` atomically."""
    with atomic_path(path) as tmp:
        write(tmp)


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2) + "\n"))


def read_json(path: str | os.PathLike, what: str = "file") -> Any:
    """Read JSON from ``path``; raise ``FileNotFoundError``/``ValueError`` naming ``what``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{what} {path} is corrupt (not valid JSON): {error}") from error


class DirectoryBusyError(RuntimeError):
    """Another live process is writing the directory."""


class DirectoryLock:
    """One writer per directory: an exclusive ``flock`` on ``DIR/.lock`` holding the writer's pid.

    The kernel releases the lock when its process ends, however it ends, so a lock left by a
    killed process is simply taken over, and the temporary files such a writer left in the
    directory (:func:`atomic_path`) are removed. A directory the lock created is removed again
    when nothing but the lock file was written into it (e.g. the writer refused bad input). Use
    as a context manager, or :meth:`acquire` and :meth:`release`.

    Raises:
        DirectoryBusyError: (on enter) another process holds the lock; the message names its pid.
    """

    FILE = ".lock"

    def __init__(self, directory: str | os.PathLike) -> None:
        self.path = Path(directory) / self.FILE
        self._fd: int | None = None
        self._created = False

    def acquire(self) -> DirectoryLock:
        """Take the lock (see the class); return ``self``."""
        import fcntl

        self._created = not self.path.parent.exists()
        make_directory(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DirectoryBusyError(f"{self.path.parent} is being written by process {holder}; "
                                     "wait for it to finish or stop it first") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        for leftover in self.path.parent.iterdir():
            if is_temporary(leftover) and leftover.is_file():
                leftover.unlink()
        return self

    def release(self) -> None:
        """Give the lock up (the file stays for the next writer, unless the directory is
        removed as described in the class)."""
        if self._fd is None:
            return
        if self._created and not written_entries(self.path.parent):
            self.path.unlink()
            self.path.parent.rmdir()
        os.close(self._fd)  # closing releases the flock
        self._fd = None

    def __enter__(self) -> DirectoryLock:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def written_entries(directory: str | os.PathLike) -> list[Path]:
    """What a directory holds besides its :class:`DirectoryLock` file and temporary files (a
    directory holding only those counts as empty); an empty list when it does not exist."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(child for child in directory.iterdir()
                  if child.name != DirectoryLock.FILE and not is_temporary(child))


def clear_directory(directory: str | os.PathLike) -> None:
    """Delete everything in ``directory`` but its lock file (the writer replacing it holds it)."""
    for child in written_entries(directory):
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
