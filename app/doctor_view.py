"""The dataset doctor's report on the Data page: counts, problems with examples, durations, rows to read and hear."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.charts import duration_chart
from core.data import DoctorReport, duration_histogram, report_table


def show_report(report: DoctorReport) -> None:
    m1, m2, m3 = st.columns(3)
    m1.metric("Rows examined", len(report.rows))
    m2.metric("Audio", f"{report.seconds / 60:.1f} min")
    m3.metric("Problems", len(report.problems))
    for problem in report.problems:
        st.warning(f"**{problem.name}**: {problem.rows} rows. {problem.advice}.  \ne.g. {'; '.join(problem.examples)}")
    if not report.problems:
        st.success("No problems found in the rows examined.")
    chart = duration_chart(duration_histogram(report), report.window_seconds)
    if chart is not None:
        st.altair_chart(chart, width="stretch")
    st.dataframe(pd.DataFrame(report_table(report)), width="stretch", hide_index=True, height="auto")
    with st.expander("Listen to the first rows"):
        for row in report.rows[:8]:
            st.caption(f"{row['split']} · {row['id']} · {row['text']}")
            audio = row["audio"]
            st.audio(audio if isinstance(audio, bytes) else str(audio))
