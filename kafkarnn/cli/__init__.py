"""The command line: its options (options.py), a table from each command to its function (commands.py)."""
