"""One claimed batch, settled: upload it, and split it while the server refuses it permanently.

The decisions are pure (:mod:`synclease.core.delivery`); this module applies them to the queue:

* 2xx → ``complete`` the part (delete it);
* a permanent refusal of several events → send each half, older half first (the good events flow);
* a permanent refusal of one event → count it in its row and give it back (the round ends and the
  worker backs off), or, at the bound, ``dead_letter`` it and go on with the rest of the batch;
* anything else (5xx, network, auth, 3xx) → give the part and the rest back; the worker backs off.
* an uploader that *raises* (it must return an outcome: a raise is a bug, and would raise again) →
  its traceback is logged once (token scrubbed), the part and the rest are given back at once (so
  another daemon, e.g. a fixed version, may take them), and the round ends with a ``halt``
  :class:`Failure`: the worker claims nothing more until the daemon restarts (ADR 0020).

Between uploads the claim of what is still held is extended, so a long round keeps its batch; after
``stop_claiming`` no further part is sent (the rest is given back at once). Every stored or reported
reason is scrubbed of the session token.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Sequence

from synclease.adapters.queue import EventQueue
from synclease.adapters.upload import UploadOutcome
from synclease.core.clock import Waitable
from synclease.core.delivery import MAX_REJECTIONS, BatchVerdict, Bisection, judge, scrub
from synclease.core.errors import SyncleaseError
from synclease.core.events import Event
from synclease.core.record import record
from synclease.core.session import Session

log = logging.getLogger("synclease.work")

#: ``uploader(server_url, token, events, timeout)``; by default
#: :func:`~synclease.adapters.upload.upload_batch`.
Uploader = Callable[[str, str, Sequence[Event], float], UploadOutcome]


@record
class Failure:
    """Why a round ended early (the worker backs off): never containing the token."""

    reason: str
    auth_failed: bool = False
    retry_after: float | None = None
    #: A bug (the uploader raised): stop claiming until the daemon restarts, instead of retrying it.
    halt: bool = False


@record
class RoundResult:
    delivered: int = 0
    dead_lettered: int = 0
    failure: Failure | None = None


def _ids(events: Sequence[Event]) -> list[str]:
    return [event.id for event in events]


@record(frozen=False)
class Settler:
    queue: EventQueue
    session: Session
    instance_id: str
    uploader: Uploader
    upload_timeout: float
    claim_seconds: float
    #: Set once no further upload may start (``stop_claiming``).
    stopping: Waitable
    #: Told which event ids are still held after every step (the worker's ``stop`` releases them).
    holding: Callable[[list[str]], None]

    def _upload(self, part: Sequence[Event]) -> UploadOutcome | Failure:
        """The uploader's outcome, or a ``halt`` :class:`Failure` when it raised (logged here, once)."""
        try:
            return self.uploader(self.session.server_url, self.session.token, part, self.upload_timeout)
        except Exception as exc:  # an uploader must not raise: a bug, which retrying would only repeat
            trace = "".join(traceback.format_exception(exc)).rstrip()
            if self.session.token:
                trace = trace.replace(self.session.token, "***")
            log.error(
                "the uploader raised (a bug): %d events given back; this daemon claims no more events "
                "until it restarts\n%s",
                len(part),
                trace,
            )
            return Failure(f"uploader raised {type(exc).__name__} (a bug; see the log)", halt=True)

    def _give_back(self, events: Sequence[Event]) -> None:
        try:
            self.queue.release(self.instance_id, _ids(events))
        except SyncleaseError as exc:
            log.warning(
                "could not release %d events (%s); their claim will lapse", len(events), exc.one_line()
            )

    def settle(self, batch: Sequence[Event]) -> RoundResult:
        plan = Bisection(batch)
        delivered = dead = 0
        first = True
        while (part := plan.next()) is not None:
            held = part + plan.remaining()
            if not first:
                if self.stopping.is_set():
                    self._give_back(held)
                    break
                try:
                    self.queue.extend_claim(self.instance_id, _ids(held), self.claim_seconds)
                except SyncleaseError as exc:
                    self._give_back(held)
                    return RoundResult(delivered, dead, Failure(f"queue: {exc.one_line()}"))
            first = False
            outcome = self._upload(part)
            if isinstance(outcome, Failure):
                self._give_back(held)
                self.holding([])
                return RoundResult(delivered, dead, outcome)
            reason = scrub(outcome.reason, self.session.token)
            verdict = judge(outcome.kind, outcome.status, part)
            try:
                failure = self._apply(verdict, part, plan, outcome, reason)
            except SyncleaseError as exc:
                # Delivered but not deleted, or not counted: the claim lapses and the part is sent again.
                self._give_back(plan.remaining())
                return RoundResult(delivered, dead, Failure(f"queue: {exc.one_line()}"))
            delivered += len(part) if verdict is BatchVerdict.DELIVERED else 0
            dead += 1 if verdict is BatchVerdict.DEAD_LETTER else 0
            self.holding(_ids(plan.remaining()))
            if failure is not None:
                return RoundResult(delivered, dead, failure)
        return RoundResult(delivered, dead)

    def _apply(
        self, verdict: BatchVerdict, part: list[Event], plan: Bisection, outcome: UploadOutcome, reason: str
    ) -> Failure | None:
        """Apply ``verdict`` to ``part``; a :class:`Failure` when the round must end here."""
        if verdict is BatchVerdict.DELIVERED:
            self.queue.complete(self.instance_id, _ids(part))
            return None
        if verdict is BatchVerdict.SPLIT:
            log.info("a batch of %d events was refused (%s); sending each half", len(part), reason)
            plan.split(part)
            return None
        event = part[0]
        if verdict is BatchVerdict.DEAD_LETTER:
            self.queue.dead_letter(self.instance_id, event.id, outcome.status, reason)
            log.warning(
                "dead-lettered event %s (type %.60r) after %d refusals (%s)",
                event.id,
                event.type,
                MAX_REJECTIONS,
                reason,
            )
            return None
        self._give_back(part + plan.remaining() if verdict is not BatchVerdict.REJECTED else plan.remaining())
        if verdict is BatchVerdict.REJECTED:
            self.queue.record_rejection(self.instance_id, event.id, outcome.status, reason)
            count = event.rejections + 1
            return Failure(f"event {event.id} refused alone ({reason}), {count} of {MAX_REJECTIONS}")
        return Failure(reason, verdict is BatchVerdict.AUTH, outcome.retry_after)
