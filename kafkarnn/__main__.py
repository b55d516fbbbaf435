"""`python -m kafkarnn` runs the program, as the `kafkarnn` command does."""

from kafkarnn.main import main

raise SystemExit(main())
