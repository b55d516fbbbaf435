"""Run folders and who may write them: checkpoints, the lock, hand-over between trainers, listing. No UI imports."""
