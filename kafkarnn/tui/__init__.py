"""The training monitor: a Textual front end over `kafkarnn.train.session.Session`.

`monitor` runs the App over a run's life (`run_monitor()`, what `kafkarnn.main` calls; the life,
train/life.py, opens the run and says how it ended); `app` is the thin App, which returns the
Ending; `training` the main screen; `widgets` the panes; `screens` the generate dialog;
`app.tcss` the one stylesheet. Nothing here trains: the session's loop runs in a worker thread,
publishes snapshots the UI polls, and takes commands the UI sends.
"""
