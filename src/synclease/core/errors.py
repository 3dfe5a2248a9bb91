"""The one error family. Every expected failure is a :class:`SyncleaseError` with an exit code.

The error boundary (:mod:`synclease.adapters.boundary`) is the only place that turns these into exit
codes and one-line messages; nothing else prints errors or calls ``sys.exit``.
"""

from __future__ import annotations

from typing import ClassVar

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_USAGE = 2
EXIT_ALREADY_RUNNING = 3
#: An unexpected exception (a bug): one line naming the crash report, never a traceback on screen.
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


class SyncleaseError(Exception):
    """Base of every expected failure: ``message`` says what is wrong, ``hint`` how to fix it."""

    exit_code: ClassVar[int] = EXIT_PROBLEM

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        text = " ".join(self.message.rstrip(".").split())
        return f"{text}: {self.hint}" if self.hint else text


class BadInputError(SyncleaseError):
    """A bad argument, environment variable or file given by the user (exit 2)."""

    exit_code = EXIT_USAGE


class RootError(BadInputError):
    """A directory we keep private state in (the daemon root, a project's ``.kittify``) is unsafe or
    unusable: a symlink, another owner, group/world-writable, not a directory."""


class UnsupportedPlatformError(BadInputError):
    """This operating system is not supported (yet): raised before anything touches the OS (exit 2)."""


class AlreadyRunningError(SyncleaseError):
    """A healthy singleton already serves this scope (exit 3)."""

    exit_code = EXIT_ALREADY_RUNNING


class DaemonStartError(SyncleaseError):
    """A spawned daemon did not become healthy; ``log_tail`` holds its last log lines."""

    def __init__(
        self, message: str, *, hint: str | None = None, log_tail: str = "", code: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.log_tail = log_tail
        #: A short machine tag: ``exit_<status>``, ``no_health``, ``backoff``.
        self.code = code
