"""The detached processes: one shared lifecycle (:mod:`.lifecycle`) and each daemon's own parts."""
