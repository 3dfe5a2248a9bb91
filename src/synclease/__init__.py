"""synclease: background sync daemons that hold heartbeat leases and are reaped only on proof."""
