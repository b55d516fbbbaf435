"""The training layer: corpus, configuration, trainer, checkpoints and run folders. No UI imports."""
