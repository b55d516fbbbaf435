"""`python -m kafkarnn` runs the command line."""

from kafkarnn.cli import main

raise SystemExit(main())
