"""Train: a form built from the training config, Start/Stop/Resume, and a live view read from the run folder."""

import pandas as pd
import streamlit as st

from app.charts import error_rate_curves, guard_curves, training_curves
from app.new_run import RUN_PICKER, new_run_panel
from app.students import smaller_model_control
from app.tab_state import DEMO_JOB, SELECTED_RUN, action, show_flash, show_outcome, workspace
from app.widgets import user_errors
from core.data import list_artifacts
from core.formatting import MISSING, format_duration, readable_lines
from core.training import (
    RunFolder,
    command_job,
    command_job_state,
    eta_seconds,
    list_runs,
    phase_progress,
    resume_run,
    run_warnings,
    stop_run,
)

ws = workspace()
st.title("Train")
show_flash()
datasets = list_artifacts(ws)
runs = list_runs(ws.runs)
demo = command_job(ws, DEMO_JOB)
new_run_panel(ws, datasets, runs, demo_running=bool(demo and command_job_state(demo) == "running"))

ACTED = "train_run_acted"  # the outcome of Stop or Resume


def stop(run: RunFolder) -> str:
    stop_run(run)
    return f"Stopping **{run.name}**: it saves a checkpoint first"


def resume(run: RunFolder) -> str:
    resume_run(run, ws)
    return f"Resumed **{run.name}**"


if runs:
    current = st.session_state.get(SELECTED_RUN)
    newest_first = runs[::-1]
    name = st.selectbox(
        "Run", newest_first, index=newest_first.index(current) if current in runs else 0, key=RUN_PICKER
    )
    st.session_state[SELECTED_RUN] = name

    def live_view(name: str, polling: bool) -> None:
        run = RunFolder.of(ws, name)
        status, metrics, summary = run.status(), run.metrics(), run.summary()
        if status.live != polling:
            # the run ended, or Resume (a click in this view reruns only the view) brought it back: the whole page
            # (the runs table, the sidebar) says so, and the polling stops or starts
            st.rerun()
        doing, fraction = phase_progress(status)
        eta = eta_seconds(status, metrics)
        head = st.columns([3, 1, 1])
        head[0].progress(
            fraction or 0.0, text=f"**{status.state}** · {doing}" + (f" · ETA {format_duration(eta)}" if eta else "")
        )
        # callbacks: a click acts when it reaches the server, whatever rerun (of this view every 2 s) is going on
        if status.live:
            head[1].button("Stop", icon=":material/stop:", key=f"stop-{name}", on_click=action(ACTED, stop, run))
        if status.resumable:
            head[2].button(
                "Resume", icon=":material/replay:", key=f"resume-{name}", on_click=action(ACTED, resume, run)
            )
        show_outcome(ACTED)
        if status.error:
            st.error(f"{status.state}: {status.error}")
        if status.note:
            st.info(status.note)
        for warning in [*run_warnings(metrics), *status.warnings]:
            st.warning(warning, icon=":material/warning:")
        last = next((r for r in reversed(metrics) if "loss" in r), {})
        cols = st.columns(5)
        cols[0].metric("Loss", f"{last['loss']:.3f}" if "loss" in last else MISSING)
        cols[1].metric("Base model WER", summary.baseline_shown, help="zero-shot, on the validation split")
        cols[2].metric("Best WER", summary.best_shown, help=f"validation split; {summary.best_checkpoint_shown}")
        cols[3].metric(
            "Test WER",
            summary.test_after_shown if summary.test_after is not None else summary.test_before_shown,
            delta=summary.test_change,
            delta_color="inverse",
            help=f"held-out test split: before training (the starting model) {summary.test_before_shown}, "
            f"after (the best checkpoint) {summary.test_after_shown}",
        )
        memory = last.get("gpu_memory_gb")
        cols[4].metric(
            "Samples/s",
            f"{last['samples_per_second']:.1f}" if "samples_per_second" in last else MISSING,
            help=f"GPU memory {memory:.1f} GiB" if memory else "CPU",
        )
        if summary.change != MISSING or summary.guards != MISSING:
            st.caption(
                f"Test change {summary.change} · guards before → after: {summary.guards} · "
                f"probe words (no speech) before → after: {summary.probes}"
            )
        charts = st.columns(3)
        wer_chart = error_rate_curves({name: metrics}, with_cer=True)
        if wer_chart is not None:
            charts[0].altair_chart(wer_chart.properties(title="validation WER / CER"), width="stretch")
        for column, chart in zip(charts[1:], training_curves(metrics).values()):
            column.altair_chart(chart, width="stretch")
        harm = guard_curves(metrics)  # what the fine-tune may break, beside what it mends
        if harm:
            for column, chart in zip(st.columns(3), harm.values()):
                column.altair_chart(chart, width="stretch")
        with st.expander("Last log lines"):
            # the run's own lines: the libraries' warnings stay in train.log, out of what a person reads here
            st.code("\n".join(readable_lines(run.log_tail(60))[-15:]) or "(empty)", language=None)
        with st.expander("The same run from the command line"), user_errors():
            st.code(run.config().command_line(), language="bash")
        if run.path.joinpath("tensorboard").is_dir():
            st.caption(f"TensorBoard logs: `tensorboard --logdir {run.path / 'tensorboard'}`")

    # redrawn every 2 s while the run is live, never when it is not: each timer is a chance for Streamlit's frontend
    # to place a fragment's elements at a stale position (under load, seen as the page drawn into the sidebar)
    polling = RunFolder.of(ws, name).status().live
    st.fragment(run_every=2 if polling else None)(live_view)(name, polling)
    smaller_model_control(ws, RunFolder.of(ws, name))  # a student of a finished run (app/students.py)

    def all_runs() -> None:
        st.subheader("All runs")
        table = pd.DataFrame([RunFolder.of(ws, r).summary().table_row() for r in list_runs(ws.runs)[::-1]])
        st.dataframe(table, width="stretch", hide_index=True)

    st.fragment(run_every=5 if polling else None)(all_runs)()  # the live run's row follows it too
