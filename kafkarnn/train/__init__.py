"""The training layer: corpus, configuration, trainer, the session's loop, and a run's life from
opening it to its Ending (life.py). It uses the engine and the run folders; no UI imports."""
