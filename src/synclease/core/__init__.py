"""The pure core: records and their codecs, judgements and decisions. Nothing here does I/O.

It never touches a file, a socket, a process, a lock or a clock; the adapters gather facts, the core
decides on them. The import-linter contracts in ``pyproject.toml`` hold it to that.
"""
