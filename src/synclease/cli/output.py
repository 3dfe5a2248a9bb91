"""Rendering helpers: exactly one JSON document on stdout for ``--json``, rich text otherwise.

rich is imported only when human output is actually printed, so ``--json`` commands start faster.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


class _LazyConsole:
    def __init__(self, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    def _get(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr, highlight=False, soft_wrap=True)
        return self._console

    def print(self, *objects: Any, markup: bool | None = None) -> None:
        self._get().print(*objects, markup=markup)

    def input(self, prompt: str) -> str:
        return self._get().input(prompt)


stdout_console = _LazyConsole(stderr=False)
stderr_console = _LazyConsole(stderr=True)


def json_text(document: Any) -> str:
    """The one way a ``--json`` document is written: indented, keys sorted, no NaN."""
    return json.dumps(document, indent=2, sort_keys=True, allow_nan=False) + "\n"


def emit_json(document: Any) -> None:
    sys.stdout.write(json_text(document))
    sys.stdout.flush()
