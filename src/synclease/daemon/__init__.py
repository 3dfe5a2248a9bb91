"""The sync daemon: pure governor, control plane, lifecycle."""
