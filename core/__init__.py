"""Whisper Studio's engine: data sources, features, models, training, evaluation and jobs.

Usable without Streamlit (it never imports it): the app's pages and the `python -m core` command line are two thin
front ends over the same functions.
"""

__version__ = "0.1.0"
