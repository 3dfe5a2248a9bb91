"""Thin file store for lease and singleton records in one daemon root.

Reads never raise for bad content: a missing, truncated, hostile or unknown-version file comes back as
an entry with ``problem`` set, for ``doctor`` to report and for nobody to trust.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from synclease.adapters.clock import SYSTEM_CLOCK
from synclease.adapters.fsio import UnsafeFileError, atomic_write, read_private, remove_file
from synclease.adapters.locks import file_lock
from synclease.adapters.root import DaemonRoot
from synclease.core.clock import Clock
from synclease.core.codec import CodecError
from synclease.core.constants import MAX_RECORD_BYTES, SYNC
from synclease.core.lease import (
    INSTANCE_ID_RE,
    LeaseEntry,
    LeaseRecord,
    SingletonRecord,
    decode_lease,
    decode_singleton,
    encode_lease,
    encode_singleton,
    next_generation,
)
from synclease.core.record import record

SINGLETON_LOCK_TIMEOUT_SECONDS = 15.0


@record
class SingletonEntry:
    record: SingletonRecord | None
    problem: str | None = None
    detail: str = ""


def _read_record(path: Path) -> tuple[bytes | None, str | None, str]:
    try:
        return read_private(path, MAX_RECORD_BYTES), None, ""
    except FileNotFoundError:
        return None, "missing", ""
    except UnsafeFileError as exc:
        return None, exc.reason, exc.detail


class LeaseStore:
    def __init__(self, root: DaemonRoot, family: str = SYNC) -> None:
        self.root = root
        self.family = family

    # --- leases -------------------------------------------------------------------------------

    def write(self, lease: LeaseRecord, *, durable: bool = True) -> None:
        """``durable=False`` for a renewal: atomic, the data fsynced, the directory not
        (:func:`~.fsio.atomic_write`)."""
        path = self.root.lease_path(lease.instance_id, self.family)
        atomic_write(path, encode_lease(lease), durable=durable)

    def read_path(self, path: Path) -> LeaseEntry:
        instance_id = path.name.removesuffix(".json")
        data, problem, detail = _read_record(path)
        if data is None:
            return LeaseEntry(path, instance_id, None, problem, detail)
        try:
            lease = decode_lease(data)
        except CodecError as exc:
            return LeaseEntry(path, instance_id, None, exc.reason, exc.detail)
        if lease.instance_id != instance_id or lease.family != self.family:
            return LeaseEntry(path, instance_id, None, "name_mismatch", lease.instance_id)
        return LeaseEntry(path, instance_id, lease)

    def read(self, instance_id: str) -> LeaseEntry:
        return self.read_path(self.root.lease_path(instance_id, self.family))

    def list(self) -> list[LeaseEntry]:
        """Every lease file of the family, trusted or not (temp files of writers in flight skipped)."""
        try:
            names = sorted(p for p in self.root.leases_dir(self.family).iterdir())
        except FileNotFoundError:
            return []
        entries: list[LeaseEntry] = []
        for path in names:
            if path.name.startswith(".") or path.suffix != ".json":
                continue
            if not INSTANCE_ID_RE.match(path.stem):
                entries.append(LeaseEntry(path, path.stem[:64], None, "bad_name"))
                continue
            entries.append(self.read_path(path))
        return entries

    def delete_own(self, lease: LeaseRecord) -> bool:
        """Delete the lease file only if it still holds this very lease (same instance and token)."""
        current = self.read(lease.instance_id).lease
        if current is None or current.token != lease.token or current.pid != lease.pid:
            return False
        removed = remove_file(self.root.lease_path(lease.instance_id, self.family))
        remove_file(self.root.holder_lock_path(lease.instance_id, self.family))
        return removed

    def delete_stale(self, entry: LeaseEntry) -> bool:
        """Remove a lease file (and its lock file) already judged stale by the caller's proof."""
        removed = remove_file(entry.path)
        remove_file(self.root.holder_lock_path(entry.instance_id, self.family))
        return removed

    # --- singleton ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def singleton_lock(self, timeout: float = SINGLETON_LOCK_TIMEOUT_SECONDS) -> Iterator[None]:
        """Hold the scope's singleton lock; every change of the singleton record happens inside."""
        with file_lock(
            self.root.singleton_lock_path(self.family),
            timeout,
            busy_hint="another synclease command is starting or resetting a daemon; retry shortly",
        ):
            yield

    def read_singleton(self) -> SingletonEntry:
        data, problem, detail = _read_record(self.root.singleton_path(self.family))
        if data is None:
            return SingletonEntry(None, problem, detail)
        try:
            return SingletonEntry(decode_singleton(data))
        except CodecError as exc:
            return SingletonEntry(None, exc.reason, exc.detail)

    def write_singleton(self, record: SingletonRecord) -> None:
        """Write the singleton record; call only while holding :meth:`singleton_lock`."""
        atomic_write(self.root.singleton_path(self.family), encode_singleton(record))

    def next_generation(self, clock: Clock = SYSTEM_CLOCK) -> int:
        """The generation of the next singleton record (:func:`~synclease.core.lease.next_generation`),
        never below ``clock``'s wall time in ms."""
        current = self.read_singleton().record
        wall_ms = int(clock.now().timestamp() * 1000)
        return next_generation(None if current is None else current.generation, wall_ms)

    def clear_singleton_if(self, instance_id: str) -> bool:
        """Remove the singleton record if it still names ``instance_id``; call under the lock."""
        current = self.read_singleton().record
        if current is None or current.instance_id != instance_id:
            return False
        return remove_file(self.root.singleton_path(self.family))
