"""Use cases: ensure a daemon, survey and sweep the fleet, retire a daemon, the doctor, dashboards.

Each service runs one sequence over the adapters and asks the core what to decide; none parses
arguments or renders output (that is the CLI's job).
"""
