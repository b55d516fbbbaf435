"""The training monitor: a Textual front end over `kafkarnn.train.session.Session`.

`app` holds the thin App and `run_monitor()` (what the CLI calls), `widgets` the panes,
`screens` the generate dialog, `app.tcss` the one stylesheet. Nothing here trains: the
session's loop runs in a worker thread, publishes snapshots the UI polls, and takes
commands the UI sends.
"""
