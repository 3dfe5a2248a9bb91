"""``synclease sync move-aside PATH [--json]``: set an unusable queue database aside (renamed with its
-wal/-shm, never deleted), so ``sync push`` and ``sync start`` work again with a fresh queue.

PATH must be a queue database of this root that a read-only look proves unusable (what
``auth doctor``'s ``queue_unusable`` finding names); a usable one is refused (exit 1).
"""

from __future__ import annotations

from synclease.cli.output import emit_json, stdout_console
from synclease.services import context
from synclease.services.queue_aside import move_aside


def run(path: str, as_json: bool) -> int:
    ctx = context.load(create=False)
    result = move_aside(ctx.root, path, ctx.clock)
    if as_json:
        emit_json(
            {
                "path": str(result.path),
                "queue": result.queue,
                "problem": result.problem,
                "moved": [{"from": str(src), "to": str(dst)} for src, dst in result.moved],
            }
        )
        return 0
    for src, dst in result.moved:
        stdout_console.print(f"moved {src} -> {dst}", markup=False)
    stdout_console.print(
        f"the {result.queue} queue was {result.problem}; the next sync push or sync start creates a new one",
        markup=False,
    )
    return 0
