"""Lease protocol v1: a pure codec (:mod:`.codec`), holder proof (:mod:`.holder`) and a thin store."""
