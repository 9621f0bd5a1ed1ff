"""The package's user-facing errors: :class:`M2mError` and the one-line reading of an OSError of
the output location. Standard library only (no torch, no numpy), so the CLI can catch them without
loading the heavy modules; ``utils`` re-exports every name here.
"""

from __future__ import annotations

import contextlib
import errno
from typing import Iterator


class M2mError(Exception):
    """An error the user can act on; the CLI prints its message on one line and exits non-zero."""


# errno values that are the user's environment, not a bug: say so on one line
_USER_OS_ERRORS = {errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
                   errno.EROFS: "read-only file system", errno.ENOSPC: "no space left on device",
                   errno.EDQUOT: "disk quota exceeded"}


def os_error_message(exc: OSError) -> str | None:
    """A one-line message for an OSError caused by the output location, else None."""
    reason = _USER_OS_ERRORS.get(exc.errno)
    if reason is None:
        return None
    where = f" at {exc.filename}" if exc.filename else ""
    return f"{reason}{where}; free some space or fix the permissions, or pass another --out"


@contextlib.contextmanager
def user_os_errors() -> Iterator[None]:
    """Turn an OSError of the output location (read-only, full disk) into an M2mError."""
    try:
        yield
    except OSError as exc:
        message = os_error_message(exc)
        if message is None:
            raise
        raise M2mError(message) from None


__all__ = ["M2mError", "os_error_message", "user_os_errors"]
