"""Daemons of a family a host declares (:func:`synclease.declare_family`): the shared lifecycle, a
lease in the family's lease directory, a lease-v1 self-report, polite retirement. ADR 0019."""
