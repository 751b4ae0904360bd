"""Read a vendor drop without ever leaving it: no symlinks, no hard links, no traversal names.

Why: a drop is written by someone else. A symlink in it (``bars.parquet -> /etc/passwd``, or a whole session
folder linked elsewhere) made the directory connector land, and ``vendor serve`` serve, bytes from outside the
drop. Checking ``Path.resolve()`` first and opening afterwards leaves a window in which the entry can be
swapped, so every component is opened relative to its parent's descriptor with ``O_NOFOLLOW``: what is
checked is what is read. A regular file with more than one hard link may be another name of a file outside
the drop (a hard link cannot be told from the original), so it is refused too.

Every refusal names the entry (``<market>/<session>/<name>``) and why, never the bytes.
"""

import errno
import os
import stat
from pathlib import Path

_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)


class ConfinementError(ValueError):
    """An entry of a drop that would read outside it (symlink, hard link, traversal name, special file)."""

    def __init__(self, entry: str, reason: str):
        super().__init__(f"{entry}: refused, {reason}")
        self.entry = entry
        self.reason = reason


class EntryNotFound(LookupError):
    """The entry does not exist in the drop."""

    def __init__(self, entry: str):
        super().__init__(f"{entry}: no such entry in the drop")
        self.entry = entry


def check_name(name: str, entry: str) -> str:
    """``name`` if it is one plain path component (no separator, no ``.``/``..``, no NUL), else refuse."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise ConfinementError(entry, f"{name!r} is not a plain file name (path traversal)")
    return name


def _refusal(dir_fd: int, name: str, entry: str, exc: OSError) -> Exception:
    if exc.errno == errno.ENOENT:
        return EntryNotFound(entry)
    try:
        info = os.lstat(name, dir_fd=dir_fd)
    except OSError:
        return EntryNotFound(entry) if exc.errno == errno.ENOENT else exc
    if stat.S_ISLNK(info.st_mode):
        return ConfinementError(entry, f"it is a symbolic link (to {os.readlink(name, dir_fd=dir_fd)!r})")
    if exc.errno == errno.ENOTDIR:
        return ConfinementError(entry, "it is not a directory")
    return exc


def _open_at(dir_fd: int, name: str, flags: int, entry: str) -> int:
    try:
        return os.open(name, flags, dir_fd=dir_fd)
    except OSError as exc:
        raise _refusal(dir_fd, name, entry, exc) from None


def read_confined(root: str | Path, *parts: str, max_bytes: int | None = None) -> bytes:
    """The bytes of ``root/parts...`` if every component is a real directory or regular file inside ``root``.

    Raises ``ConfinementError`` (symlink, hard link, traversal name, not a regular file, larger than
    ``max_bytes``) or ``EntryNotFound``. ``root`` itself is the operator's choice and may be a link.
    """
    entry = "/".join(parts)
    for part in parts:
        check_name(part, entry)
    try:
        fds = [os.open(root, _OPEN_DIR & ~os.O_NOFOLLOW)]
    except (FileNotFoundError, NotADirectoryError):
        raise EntryNotFound(entry) from None
    try:
        for part in parts[:-1]:
            fds.append(_open_at(fds[-1], part, _OPEN_DIR, entry))
        fd = _open_at(fds[-1], parts[-1], _OPEN_FILE, entry)
        fds.append(fd)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfinementError(entry, "it is not a regular file")
        if info.st_nlink > 1:
            raise ConfinementError(entry, f"it has {info.st_nlink} hard links (it may be a file outside the drop)")
        if max_bytes is not None and info.st_size > max_bytes:
            raise ConfinementError(entry, f"it is {info.st_size} bytes, over the limit of {max_bytes}")
        chunks, size = [], 0
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        for fd in reversed(fds):
            os.close(fd)


def is_file_confined(root: str | Path, *parts: str) -> bool:
    """Whether ``root/parts...`` exists (a refused entry counts as existing: reading it says why)."""
    try:
        read_confined(root, *parts, max_bytes=0)
    except EntryNotFound:
        return False
    except ConfinementError:
        return True
    return True


def list_dirs_confined(root: str | Path, *parts: str) -> list[str]:
    """Names of the real sub-directories of ``root/parts...`` (symlinked folders are not listed)."""
    folder = Path(root, *(check_name(p, "/".join(parts)) for p in parts))
    try:
        if any(Path(root, *parts[: i + 1]).is_symlink() for i in range(len(parts))):
            return []
        with os.scandir(folder) as entries:
            return sorted(e.name for e in entries if e.is_dir(follow_symlinks=False))
    except (FileNotFoundError, NotADirectoryError):
        return []
