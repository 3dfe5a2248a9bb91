"""The session file ``<root>/session.json``: written atomically 0600, read defensively.

A missing file is "no session" (None); a file that exists but cannot be trusted (wrong mode, a symlink,
too large, or content the codec refuses) is :class:`~synclease.core.session.SessionFileError`.
"""

from __future__ import annotations

from synclease.adapters.fsio import (
    UnsafeFileError,
    atomic_write,
    ensure_private_dir,
    read_private,
    remove_file,
)
from synclease.adapters.root import DaemonRoot
from synclease.core.session import (
    MAX_SESSION_BYTES,
    Session,
    SessionFileError,
    decode_session,
    encode_session,
)


def save_session(root: DaemonRoot, session: Session) -> None:
    """Write the session atomically, mode 0600 (replacing any previous one)."""
    ensure_private_dir(root.path)
    atomic_write(root.session_path, encode_session(session))


def load_session(root: DaemonRoot) -> Session | None:
    """The stored session; ``None`` if there is none; :class:`SessionFileError` if it is untrustworthy."""
    try:
        data = read_private(root.session_path, MAX_SESSION_BYTES)
    except FileNotFoundError:
        return None
    except UnsafeFileError as exc:
        raise SessionFileError(exc.reason, exc.detail) from None
    return decode_session(data)


def clear_session(root: DaemonRoot) -> bool:
    """Remove the session file (never following a link). True if there was one."""
    path = root.session_path
    if path.is_dir() and not path.is_symlink():
        raise SessionFileError("not_regular_file")
    return remove_file(path)


def current_session(root: DaemonRoot) -> Session | None:
    """The stored session, or None when there is none or it cannot be trusted (doctor reports that)."""
    try:
        return load_session(root)
    except SessionFileError as exc:
        import logging

        logging.getLogger("synclease").warning("running local-only: %s", exc.one_line())
        return None
