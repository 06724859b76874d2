"""Review of pseudo-labels (the Data page): the rows a label run sent to a person, the most doubtful first, each with
its audio and an editable transcript. Keep keeps the model's text, Fix the corrected one, Drop leaves the row out; a
kept row becomes a training row of the label set through Transcribe's correct-and-keep (RecordingSet.keep: the take
checked, trimmed and written whole), so the set prepares as any other."""

from __future__ import annotations

import streamlit as st

from app.tab_state import flash, show_flash
from app.widgets import user_errors
from core.data import LabelRow, LabelSet, list_label_sets
from core.workspace import Workspace

SHOWN = 5  # rows in review shown at once: each has a player and a text box
PICKED = "review_label_set"


def review_section(ws: Workspace) -> None:
    """The label sets of the workspace and the review queue of the one chosen."""
    st.subheader("Pseudo-labels to review")
    show_flash()
    names = list_label_sets(ws)
    if not names:
        st.caption(
            "No label set yet: `python -m core label --source FOLDER --name NAME` transcribes audio nobody "
            "transcribed, each row with its confidence."
        )
        return
    name = st.selectbox("Label set", names, key=PICKED)
    with user_errors():
        labels = LabelSet.open(ws, name)
        summary = labels.summary()
        counts = " · ".join(f"{decision} {n}" for decision, n in summary.counts.items())
        st.caption(
            f"{summary.language} · labelled by {summary.model} · {counts} · **{summary.review_left} waiting for "
            f"review** · {summary.training_rows} training rows ({summary.kept_in_review} kept in review). Prepare it "
            f"as any folder: `{labels.root}`"
        )
        queue = labels.queue()
        if not queue:
            st.caption("Nothing waits for review.")
        for row in queue[:SHOWN]:
            review_row(labels, row)


def review_row(labels: LabelSet, row: LabelRow) -> None:
    """One row: why it is in doubt, its audio, its transcript to correct, and the three decisions."""
    key = f"review-{labels.name}-{row.index}-{row.part}"
    with st.container(border=True):
        st.caption(f"**{row.id}** · {row.seconds:.1f} s · {row.reason}")
        st.audio(str(labels.clip_path(row)))
        text = st.text_area("Transcript (correct it, then Fix)", row.text, key=f"{key}-text")
        keep, fix, drop = st.columns(3)
        chosen = None
        if keep.button("Keep", key=f"{key}-keep", icon=":material/check:", help="keep the model's transcript"):
            chosen = ("keep", row.text)
        if fix.button("Fix", key=f"{key}-fix", icon=":material/edit:", disabled=text.strip() == row.text.strip()):
            chosen = ("fix", text)
        if drop.button("Drop", key=f"{key}-drop", icon=":material/delete:", help="leave this row out of training"):
            chosen = ("drop", "")
        if chosen:
            with user_errors():
                take = labels.decide(row.id, *chosen)
                flash(f"{row.id}: " + (f"kept as {take.file_name}" if take else "dropped"))
                st.rerun()
