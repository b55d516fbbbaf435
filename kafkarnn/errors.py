"""The one exception type a user should see as a sentence rather than a traceback."""


class KafkarnnError(Exception):
    """A problem with the user's input (corpus, checkpoint, options): reported as one line, exit code 2."""


class CorpusError(KafkarnnError):
    """The corpus cannot be read or is not usable text."""


class CheckpointError(KafkarnnError):
    """A checkpoint is missing, corrupt, or does not match the run."""
