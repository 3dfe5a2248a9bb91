"""Thin I/O adapters: files, the daemon root, stores, loopback HTTP, processes, spawning, the clock.

Each gathers facts or performs one effect and decides nothing; the decisions are in
:mod:`synclease.core`, the sequences that combine them in :mod:`synclease.services`.
"""
