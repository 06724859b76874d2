"""Whisper Studio's Streamlit front end: the entrypoint, the shared sidebar and widgets (see app/main.py)."""
