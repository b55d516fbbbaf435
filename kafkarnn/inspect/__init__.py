"""Looking at a trained model: what its units track, what it expects, loading a run to sample from. No UI imports."""
