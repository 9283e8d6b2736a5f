"""API keys held in files, read when a call is made and refused unless private.

A provider may name a file holding its key (``api_key_file``) instead of
storing the key in the database. The file is read right before each call, so
a rotated key needs no update and no restart, and it is refused the way ssh
refuses a private key: it must be a regular file owned by the daemon's user
that neither group nor others may read or write.

Nothing here lets the file's content reach a message, a log or a traceback:
errors name the file and say what is wrong, and none chains an exception
that could hold the content (a ``UnicodeDecodeError`` holds all of it).
"""

from __future__ import annotations

import os
import stat

__all__ = ["MAX_BYTES", "KeyFileError", "read_key_file"]

# A key is a line of text; anything much bigger is not a key file.
MAX_BYTES = 16 * 1024


class KeyFileError(Exception):
    """The file cannot be used as a key file. The message names the file and
    the problem (and the fix where there is one), never the content."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"API key file {path} {problem}")
        self.path = path
        self.problem = problem


def read_key_file(path: str) -> str:
    """The key in the file at ``path``: its text without surrounding blanks.

    Blocking (it opens and reads a file): call it from a worker thread.
    Raises KeyFileError when ``path`` is not absolute, or the file is missing
    or unreadable, not a regular file, not owned by this process's effective
    user, open to group or others (``mode & 0o077``), larger than MAX_BYTES,
    not UTF-8, empty, or holds more than the key (another line, a control
    character).
    """
    if "\x00" in path or not os.path.isabs(path):
        raise KeyFileError(path, "is not an absolute path")
    data = _read_private(path)
    text = _decoded(data)
    if text is None:
        raise KeyFileError(path, "is not UTF-8 text")
    key = text.strip()
    if not key:
        raise KeyFileError(path, "is empty; put the key in it")
    if any(c in "\r\n" for c in key):
        raise KeyFileError(path, "holds more than one line; put only the key in it")
    if any(not c.isprintable() for c in key):
        raise KeyFileError(path, "holds control characters; put only the key in it")
    return key


def _read_private(path: str) -> bytes:
    # The checks look at the opened file (fstat), not at the path, so the file
    # read is the file checked. O_NONBLOCK: opening a FIFO does not wait for a
    # writer (it is then refused as not a regular file).
    problem = None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except (FileNotFoundError, NotADirectoryError):
        problem = "does not exist"
    except PermissionError:
        problem = "cannot be read by wizd's user (permission denied)"
    except OSError as exc:
        problem = f"cannot be opened ({os.strerror(exc.errno or 0)})"
    if problem is not None:  # raised outside the except: nothing chained
        raise KeyFileError(path, problem)
    try:
        info = os.fstat(fd)
        _check(path, info)
        data = _read_at_most(fd, MAX_BYTES + 1)
    except OSError as exc:
        problem = f"cannot be read ({os.strerror(exc.errno or 0)})"
    finally:
        os.close(fd)
    if problem is not None:
        raise KeyFileError(path, problem)
    if len(data) > MAX_BYTES:
        raise KeyFileError(path, f"is larger than {MAX_BYTES} bytes; put only the key in it")
    return data


def _check(path: str, info: os.stat_result) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise KeyFileError(path, "is not a regular file")
    uid = os.geteuid()
    if info.st_uid != uid:
        raise KeyFileError(
            path, f"is owned by uid {info.st_uid}, not by wizd's user (uid {uid}); "
                  f"run chown {uid} {path}")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise KeyFileError(
            path, f"is accessible by group or others (mode {mode:04o}); run chmod 600 {path}")


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = os.read(fd, limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _decoded(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None
