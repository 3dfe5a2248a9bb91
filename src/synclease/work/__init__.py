"""The sync daemon's real work, as standalone pieces the daemon plugs together.

* :mod:`~synclease.work.session` — the auth session (server url, token, principal, team) and its file.
* :mod:`~synclease.work.queue` — the durable SQLite event queue, one per auth scope, claim-with-expiry.
* :mod:`~synclease.work.backoff` — the pure, capped exponential backoff.
* :mod:`~synclease.work.upload` — one batch ``POST {server}/v1/events``; network trouble is data.
* :mod:`~synclease.work.worker` — the background thread draining the queue, with the governor's seams.

Nothing here knows about leases, ports or the governor; the daemon wires them together.
"""
