"""Smaller models of your own: "Make a smaller model" beside a finished run (the Train page) and the students'
WER and speed against their teachers (the Compare page). The work is core's (core/training/distil.py): a student is
a run like any other."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.tab_state import SELECTED_RUN, flash
from app.widgets import user_errors
from core.errors import StudioError
from core.formatting import MISSING, percent
from core.training import (
    DistillationRecord,
    DistilRequest,
    RunFolder,
    RunState,
    distil_config,
    start_run,
    teacher_layers,
)
from core.workspace import Workspace


def smaller_model_control(ws: Workspace, run: RunFolder) -> None:
    """For a finished run that is no student itself: how many decoder layers to keep, and the button."""
    best = run.best_checkpoint_name()
    if run.status().state != RunState.COMPLETED or not best or run.config().teacher:
        return
    with st.expander("Make a smaller model", icon=":material/compress:"), user_errors():
        most = teacher_layers(str(run.path / best), ws)
        if most < 2:
            st.caption("Its decoder has one layer: nothing to keep fewer of.")
            return
        layers = st.number_input(
            "Decoder layers the student keeps",
            1,
            most - 1,
            min(2, most - 1),
            key=f"student-layers-{run.name}",
            help=f"of the teacher's {most}, maximally spaced; the encoder is shared, so the encoder cache serves",
        )
        st.caption(
            f"The student learns from {best}'s soft targets and the labels of the same data; the run's test result "
            f"is teacher → student, and Compare shows its speed-up."
        )
        if st.button("Make a smaller model", key=f"student-{run.name}", icon=":material/play_arrow:"):
            request = DistilRequest(teacher=run.name, decoder_layers=int(layers))
            student = start_run(distil_config(request, ws), ws)
            st.session_state[SELECTED_RUN] = student.name
            flash(f"Started **{student.name}**, a {int(layers)}-layer student of {run.name}")
            st.rerun()


def students_table(ws: Workspace, runs: list[str]) -> None:
    """Every student beside its teacher: test WER both ways with the interval, and decoding time both ways."""
    rows = []
    for name in runs[::-1]:
        run = RunFolder.of(ws, name)
        try:
            config = run.config()
        except StudioError:  # a damaged run shows as damaged in the table above
            continue
        if not config.teacher:
            continue
        result, record = run.result(), DistillationRecord.of(run)
        change = result.change()
        rows.append(
            {
                "Student": name,
                "Teacher": config.teacher,
                "Layers kept": f"{config.decoder_layers}" + (f" of {record.teacher_layers}" if record else ""),
                "Teacher WER": percent(result.before.wer) if result.before else MISSING,
                "Student WER": percent(result.after.wer) if result.after else MISSING,
                "Change": change.shown if change else MISSING,
                "Speed-up": f"{record.speedup:.1f}× ({record.teacher_seconds:.1f} s → {record.student_seconds:.1f} s)"
                if record
                else MISSING,
            }
        )
    if rows:
        st.subheader("Smaller models: students beside their teachers")
        st.table(pd.DataFrame(rows).set_index("Student"))
        st.caption(
            "Held-out test split, teacher and student on the same utterances (95% paired-bootstrap interval); speed: "
            "the same test clips decoded by both, from log-mel, median of 3 alternating rounds."
        )
