"""``synclease explain TARGET [--json]``: why a listener or lease is what it is (exit 1 if nothing
matches, 2 for a malformed target)."""

from __future__ import annotations

from synclease.cli.output import emit_json, stdout_console
from synclease.core.explain import Explanation, parse_target
from synclease.services import context
from synclease.services.explain import explain


def _word(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _proof(value: object) -> str:
    """One proof for people: ``key=value`` pairs (unknowns left out), or the list, or ``none``."""
    if isinstance(value, dict):
        return " ".join(f"{k}={_word(v)}" for k, v in value.items() if v is not None) or "none"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    return _word(value)


def _render(verdict: Explanation) -> None:
    con = stdout_console
    doc = verdict.to_json()
    if not verdict.found:
        con.print(f"nothing of this root's sync fleet matches {verdict.target.text!r}", markup=False)
    else:
        con.print(
            f"{verdict.target.text}: {doc['daemon_family'] or 'unknown family'} "
            f"instance {doc['instance_id'] or '?'}: {doc['cleanup_class'] or 'a lease without a listener'}"
            + (f" ({doc['skip_reason']})" if doc["skip_reason"] else ""),
            markup=False,
        )
        for leg, value in doc["proofs"].items():
            con.print(f"  proof {leg}: {_proof(value)}", markup=False)
        if verdict.alive_because:
            con.print(f"  alive because {verdict.alive_because}", markup=False)
        con.print(
            f"  sync start would reuse it: {'yes' if verdict.reuse.would_reuse else 'no'} "
            f"({verdict.reuse.why})",
            markup=False,
        )
        reset, force, why = verdict.cleanup
        con.print(
            f"  --reset cleans it: {'yes' if reset else 'no'}; --force: {'yes' if force else 'no'} ({why})",
            markup=False,
        )
    for event in doc["history"]:
        con.print(f"  {event['at']} {event['event']} {event['reason'] or ''}".rstrip(), markup=False)
    if doc["next"]["command"]:
        con.print(f"next: {doc['next']['command']}", markup=False)


def run(target: str, as_json: bool) -> int:
    parsed = parse_target(target)
    ctx = context.load(create=False)
    verdict = explain(ctx.root, ctx.clock, ctx.settings.port_range, ctx.version, parsed)
    if as_json:
        emit_json(verdict.to_json())
    else:
        _render(verdict)
    return 0 if verdict.found else 1
