"""The dataset doctor's report on the Data page: counts, problems with examples, durations, rows to read and hear."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from core.data import DoctorReport, duration_histogram
from core.data.doctor import report_table


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
        window = report.window_seconds
        bars = (
            alt.Chart(histogram, title="Durations of the rows examined")
            .mark_bar()
            .encode(
                x=alt.X("seconds:Q", title="seconds", scale=alt.Scale(domainMin=0)),
                x2="end:Q",
                y=alt.Y("rows:Q", title="rows", axis=alt.Axis(format="d", tickMinStep=1)),
                tooltip=["seconds", "end", "rows"],
            )
        )
        # the model's window: a clip to the right of this line is longer than the model listens, and prepare drops it
        limit = alt.Chart(pd.DataFrame([{"seconds": window, "label": f"model's window {window:g} s"}]))
        st.altair_chart(
            bars
            + limit.mark_rule(color="#d62728", strokeDash=[6, 4]).encode(x="seconds:Q")
            + limit.mark_text(align="left", dx=4, dy=8, color="#d62728").encode(
                x="seconds:Q", y=alt.value(0), text="label:N"
            ),
            width="stretch",
        )
    st.dataframe(pd.DataFrame(report_table(report)), width="stretch", hide_index=True, height="auto")
    with st.expander("Listen to the first rows"):
        for row in report.rows[:8]:
            st.caption(f"{row['split']} · {row['id']} · {row['text']}")
            audio = row["audio"]
            st.audio(audio if isinstance(audio, bytes) else str(audio))
