"""The engine: vocabulary, recurrent cells, the character model, optimizers, sampling and gradient checks.

Imports only NumPy and the standard library: no UI, no file locations. A test asserts it.
"""
