"""The sync daemon: its lifecycle hooks, control plane, upload worker and how its work is wired."""
