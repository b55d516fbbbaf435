"""Sweeps: a grid of ordinary runs trained side by side (or as Ray tasks), from one command.

plan.py (the grid and its trials), folder.py (the sweep's folder: plan, state, lock, log),
coordinator.py (the background process that runs the trials), ray_tasks.py (trials on a Ray
cluster), table.py (what the trials reached, for a view or a comparison). No UI here.
"""
