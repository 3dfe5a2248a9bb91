"""The daemon family hostcli declares: a file watcher of its own, on its own ports.

Importing this module declares the family (``synclease.declare_family``). ``hostcli`` imports it; the
``synclease`` CLI learns of it from ``SYNCLEASE_FAMILIES=hostcli_families`` (with this folder on
``PYTHONPATH``), so ``synclease auth doctor --family hostcli-watch`` governs its daemons too.
"""

from __future__ import annotations

import synclease

#: Outside the sync family's [9400, 9450) and the dashboard's [9237, 9337); a declaration that
#: overlapped either would be refused with a FamilyError.
WATCH = synclease.declare_family("hostcli-watch", range(9520, 9530), idle_retirement_seconds=10 * 60.0)
