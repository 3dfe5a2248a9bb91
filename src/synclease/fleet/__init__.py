"""The fleet of daemons on this machine: probe what listens (:mod:`.probe`), parse self-reports
(:mod:`.health`) and classify each listener by proof (:mod:`.classify`) into the records of
:mod:`.model`. Only :mod:`.probe` does I/O; the rest is pure.
"""
