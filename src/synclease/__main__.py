"""``python -m synclease``: the same entry point as the ``synclease`` console script."""

from synclease.cli.main import main

raise SystemExit(main())
