"""The Compare page's utterances: one saved evaluation's rows, worst first, each to read as an alignment and to
hear; or two evaluations of the same test set side by side with their paired change. The numbers are core's
(core/evaluation/comparison.py): this module only lays them out."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.charts import alignment_html
from app.widgets import user_errors
from core.audio import SAMPLE_RATE
from core.errors import StudioError
from core.evaluation import (
    SavedEvaluation,
    ab_change,
    load_evaluation,
    side_by_side,
    utterance_audio,
    utterance_table,
)
from core.workspace import Workspace

ROWS_SHOWN = 10  # a table taller than this scrolls; a shorter one is as tall as its rows (no empty grid rows)
NONE = "–"


def table_height(rows: int) -> int | str:
    return 38 + 35 * ROWS_SHOWN if rows > ROWS_SHOWN else "auto"  # pixels: the header, then 35 a row


def utterance_drill_down(ws: Workspace, evaluations: list[SavedEvaluation]) -> None:
    """Pick an evaluation (and optionally a second of the same test set), then read and hear its utterances."""
    labels = {e.label: e for e in evaluations}
    pick = st.columns(2)
    first_label = pick[0].selectbox("Evaluation", list(labels), key="compare_first")
    first = labels[first_label]
    twins = [k for k, e in labels.items() if k != first_label and e.test_set == first.test_set]
    second_label = pick[1].selectbox("Side by side with", [NONE, *twins], key="compare_second")
    try:
        detail = load_evaluation(first.path)
    except StudioError as err:  # damaged or removed between listing and reading
        st.error(str(err))
        return
    if second_label != NONE:
        with user_errors():
            second = labels[second_label]
            other = load_evaluation(second.path)
            st.markdown(f"**{ab_change(detail, other)}**")
            pairs = side_by_side(detail, other, first.model, second.model)
            st.dataframe(pd.DataFrame(pairs), width="stretch", hide_index=True, height=table_height(len(pairs)))
        return
    if detail.rows:
        _utterances(ws, first, sorted(detail.rows, key=lambda r: r.wer, reverse=True))


def _utterances(ws: Workspace, evaluation: SavedEvaluation, rows: list) -> None:
    """The rows worst first, then the one chosen: its alignment, both texts, its flags and its audio."""
    table = pd.DataFrame(utterance_table(rows))
    st.dataframe(table, width="stretch", hide_index=True, height=table_height(len(rows)))
    st.caption(
        "WER: word errors over the reference's words, in percent. S: words substituted (heard as another "
        "word), D: deleted (missed), I: inserted (heard where nothing was said)."
    )
    chosen = st.selectbox("Listen to", [r.id for r in rows], key="compare_utterance")
    row = next(r for r in rows if r.id == chosen)
    st.markdown(alignment_html(row.alignment) or "(empty)", unsafe_allow_html=True)
    st.caption(
        f"reference: {row.reference}  \nhypothesis: {row.hypothesis or '(empty)'}  \n"
        f"flags: {', '.join(row.flags) or 'none'}"
    )
    with user_errors():
        audio = utterance_audio(ws, evaluation.data, evaluation.split, chosen)
        if audio is not None:
            st.audio(audio, sample_rate=SAMPLE_RATE)
