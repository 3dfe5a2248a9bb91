"""Rendering helpers: exactly one JSON document on stdout for ``--json``, rich text otherwise."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

stdout_console = Console(highlight=False, soft_wrap=True)
stderr_console = Console(stderr=True, highlight=False, soft_wrap=True)


def emit_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=True, allow_nan=False) + "\n")
    sys.stdout.flush()
