"""The dashboard family: a per-project, read-only web view of this root's sync fleet.

It lives on ``DASHBOARD_PORT_RANGE`` (``[9237, 9337)``), records itself in
``<project>/.kittify/.dashboard`` and never starts, reuses, signals or cleans a sync daemon. See
``docs/adr/0005-dashboard-family.md``.
"""
