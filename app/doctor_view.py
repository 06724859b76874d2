"""The dataset doctor's report on the Data page: counts, problems with examples, durations, rows to read and hear."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from core.data import DoctorReport, duration_histogram
from core.formatting import MISSING


def show_report(report: DoctorReport) -> None:
    m1, m2, m3 = st.columns(3)
    m1.metric("Rows examined", len(report.rows))
    m2.metric("Audio", f"{report.seconds / 60:.1f} min")
    m3.metric("Problems", len(report.problems))
    for problem in report.problems:
        st.warning(f"**{problem.name}**: {problem.rows} rows. {problem.advice}.  \ne.g. {'; '.join(problem.examples)}")
    if not report.problems:
        st.success("No problems found in the rows examined.")
    histogram = pd.DataFrame(duration_histogram(report))
    if not histogram.empty:
        st.altair_chart(
            alt.Chart(histogram, title=f"Durations (the model's window: {report.window_seconds:g} s)")
            .mark_bar()
            .encode(x=alt.X("seconds:O", title="seconds (bin start)"), y=alt.Y("rows:Q", title="rows")),
            width="stretch",
        )
    table = pd.DataFrame(
        [
            {
                **{k: MISSING if v is None else v for k, v in r.items() if k != "audio"},
                "dropped": r["dropped"] or "kept",
            }
            for r in report.rows
        ]
    )
    st.dataframe(table, width="stretch", hide_index=True, height=260)
    with st.expander("Listen to the first rows"):
        for row in report.rows[:8]:
            st.caption(f"{row['split']} · {row['id']} · {row['text']}")
            audio = row["audio"]
            st.audio(audio if isinstance(audio, bytes) else str(audio))
