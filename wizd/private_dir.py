"""The socket's folder: private to this user, or wizd does not use it.

Whoever can write to the folder holding wizd's socket can move the socket
away and bind an impostor in its place, which then answers wizctl's calls.
So the folder must be wizd's user's own, writable by nobody else, and not a
symbolic link (which could point anywhere another user chooses). Without
``XDG_RUNTIME_DIR`` the folder is ``/tmp/wiz-<uid>``, a name another local
user can take first; wizd refuses such a folder rather than "fixing" it.

wizctl makes the same check before it connects (in its own small client,
which never imports wizd).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from .errors import UnsafePath


def unsafe_reason(path: Path) -> str | None:
    """Why another user could change what is in folder ``path``, or None if nobody can.

    Raises OSError if ``path`` cannot be examined (FileNotFoundError if missing).
    """
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link"
    if not stat.S_ISDIR(st.st_mode):
        return "is not a folder"
    uid = os.geteuid()
    if st.st_uid != uid:
        return f"belongs to uid {st.st_uid}, not to you (uid {uid})"
    if st.st_mode & 0o022:
        return f"can be written by other users (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def ensure_private_dir(path: Path) -> None:
    """Make folder ``path`` (mode 0700) if it is missing, and check it is private.

    An existing folder is never changed. Raises UnsafePath, saying what to do,
    if it is a symbolic link, not a folder, someone else's, or writable by
    others; OSError if it cannot be made.
    """
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    problem = unsafe_reason(path)
    if problem is not None:
        raise UnsafePath(str(path), problem)
