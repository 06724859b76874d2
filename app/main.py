"""Whisper Studio's entrypoint: `streamlit run app/main.py` (scripts/run.sh does this on localhost:8501).

It makes the repository importable however Streamlit was started, sets the page config, draws the shared sidebar
and hands over to the page the user picked.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from app.sidebar import render_sidebar  # noqa: E402

st.set_page_config(page_title="Whisper Studio", page_icon=":material/graphic_eq:", layout="wide")
PAGES = [
    st.Page(ROOT / "pages" / "data.py", title="Data", icon=":material/dataset:", default=True),
    st.Page(ROOT / "pages" / "train.py", title="Train", icon=":material/model_training:"),
    st.Page(ROOT / "pages" / "compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page(ROOT / "pages" / "transcribe.py", title="Transcribe", icon=":material/mic:"),
]
page = st.navigation(PAGES)
render_sidebar()
page.run()
