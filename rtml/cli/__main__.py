"""`python -m rtml.cli`: the `rtml` console script."""

from rtml.cli import main

raise SystemExit(main())
