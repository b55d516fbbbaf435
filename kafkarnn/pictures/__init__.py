"""Pictures as Rich text, for the command line and the monitor alike: shaded text and line charts
(text.py), a comparison of runs (comparison.py). Rich only: no Textual."""
