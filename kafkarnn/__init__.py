"""kafkarnn: a from-scratch NumPy character-level RNN that learns to write like any text."""

__version__ = "0.1.0"
