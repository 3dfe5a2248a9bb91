"""The package version: the single source for pyproject (hatch) and the running code."""

__version__ = "0.1.0"
