"""The Compare page's publish panel: write a checkpoint's model card and files, look at them, push to the Hub."""

from __future__ import annotations

import streamlit as st

from app.tab_state import secret
from app.widgets import user_errors
from core.models import QUANTIZATIONS
from core.publish import prepare_upload, push
from core.workspace import Workspace


def publish_panel(ws: Workspace, checkpoints: dict[str, str]) -> None:
    """`checkpoints`: label → checkpoint folder of a run."""
    with st.expander("Publish to the Hugging Face Hub", icon=":material/upload:"):
        runs_only = {label: path for label, path in checkpoints.items() if "/checkpoint-" in path}
        if not runs_only:
            st.caption("Train a run first: a run's checkpoint is what gets published.")
            return
        top = st.columns([3, 2, 1])
        label = top[0].selectbox("Checkpoint", list(runs_only), key="publish_checkpoint")
        repo = top[1].text_input("Repository", placeholder="your-name/whisper-base-nb", key="publish_repo")
        form = top[2].selectbox(
            "Files",
            ["transformers", *QUANTIZATIONS],
            key="publish_form",
            help="the checkpoint as it is, or its CTranslate2 export (faster-whisper)",
        )
        private = st.checkbox("Private repository", value=True, key="publish_private")
        token = secret("HF_TOKEN")
        st.caption(
            "HF_TOKEN found (not shown)."
            if token
            else "No HF_TOKEN in the environment or secrets: the card and files can be written, not pushed."
        )
        buttons = st.columns(2)
        if buttons[0].button("Write model card and files", key="publish_write") and repo:
            with user_errors():
                upload = prepare_upload(runs_only[label], ws, repo, None if form == "transformers" else form)
                st.session_state["publish_upload"] = upload
        upload = st.session_state.get("publish_upload")
        if upload is not None:
            st.success(f"Ready in `{upload.folder}`")
            with st.container(height=300):
                st.markdown(upload.card.split("---", 2)[-1])
            if buttons[1].button("Push to the Hub", type="primary", key="publish_push", disabled=not token):
                with user_errors(), st.spinner("Uploading…"):
                    st.success(f"Published: {push(upload, token, private=private)}")
