"""The one error family. Every user-facing failure is a :class:`SyncleaseError` with an exit code.

The CLI boundary (:mod:`synclease.cli.main`) is the only place that turns these into exit codes and
one-line messages; nothing else prints errors or calls ``sys.exit``.
"""

from __future__ import annotations

from typing import ClassVar

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_USAGE = 2
EXIT_ALREADY_RUNNING = 3
EXIT_INTERRUPTED = 130


class SyncleaseError(Exception):
    """Base of every expected failure: ``message`` says what is wrong, ``hint`` how to fix it."""

    exit_code: ClassVar[int] = EXIT_PROBLEM

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        text = self.message.rstrip(".")
        return f"{text}: {self.hint}" if self.hint else text


class BadInputError(SyncleaseError):
    """A bad argument, environment variable or file given by the user (exit 2)."""

    exit_code = EXIT_USAGE


class RootError(BadInputError):
    """The daemon root is unsafe or unusable (wrong owner, permissions, a symlink)."""


class AlreadyRunningError(SyncleaseError):
    """A healthy singleton already serves this scope (exit 3)."""

    exit_code = EXIT_ALREADY_RUNNING


class DaemonStartError(SyncleaseError):
    """A spawned daemon did not become healthy; ``log_tail`` holds its last log lines."""

    def __init__(self, message: str, *, hint: str | None = None, log_tail: str = "") -> None:
        super().__init__(message, hint=hint)
        self.log_tail = log_tail


class NotRunningError(SyncleaseError):
    """No healthy daemon serves this scope where one was required (exit 1)."""


class ProblemFoundError(SyncleaseError):
    """A command ran but what it found or did is a problem (exit 1), e.g. ``failed[]`` not empty."""
