"""Whisper Studio's entrypoint: `streamlit run app/main.py` (scripts/run.sh does this on localhost:8501).

It sets the page config, hands over to the page the user picked and then draws the shared sidebar. `app` and `core`
are importable because the project is installed (`pip install -e .`, which scripts/bootstrap.sh does).
"""

from pathlib import Path

import streamlit as st

from app.sidebar import render_sidebar

ROOT = Path(__file__).resolve().parent.parent

st.set_page_config(page_title="Whisper Studio", page_icon=":material/graphic_eq:", layout="wide")
PAGES = [
    st.Page(ROOT / "pages" / "data.py", title="Data", icon=":material/dataset:", default=True),
    st.Page(ROOT / "pages" / "train.py", title="Train", icon=":material/model_training:"),
    st.Page(ROOT / "pages" / "compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page(ROOT / "pages" / "transcribe.py", title="Transcribe", icon=":material/mic:"),
    st.Page(ROOT / "pages" / "conversation.py", title="Conversation", icon=":material/forum:"),
]
page = st.navigation(PAGES)
try:
    page.run()
finally:
    # drawn after the page, so it shows what the page just did: the run started or chosen there, the dataset
    # prepared there (a sidebar drawn first lags one rerun behind)
    render_sidebar()
