"""Train: a form built from the training config, Start/Stop/Resume, and a live view read from the run folder."""

from dataclasses import replace

import pandas as pd
import streamlit as st

from app.charts import error_rate_curves, training_curves
from app.common import SELECTED_DATASET, SELECTED_RUN, percent, user_errors, workspace
from app.config_form import config_form
from core.config import PRESETS, TrainConfig, apply_preset
from core.features import list_artifacts, open_artifact
from core.jobs import resume_run, start_run, stop_run
from core.monitor import eta_seconds, format_duration, run_warnings
from core.runs import LIVE_STATES, RESUMABLE_STATES, RunFolder, list_runs

ws = workspace()
st.title("Train")
datasets = list_artifacts(ws)
runs = list_runs(ws.runs)

with st.expander("New run", expanded=not runs):
    if not datasets:
        st.info("Prepare a dataset on the Data page first (or run the offline demo from the sidebar).")
    else:
        selected = st.session_state.get(SELECTED_DATASET)
        top = st.columns(2)
        data = top[0].selectbox("Dataset", datasets, index=datasets.index(selected) if selected in datasets else 0)
        preset = top[1].selectbox(
            "Preset",
            ["none", *PRESETS],
            help="none: whisper-base with the recipe's settings; demo: the small offline model on a CPU; "
            "whisper-small: the seed recipe",
        )
        # the base model follows the dataset: its features were made by that model's processor
        prepared_with = open_artifact(ws, data).manifest["model"]
        defaults = apply_preset(
            TrainConfig(data=data, run=f"{data}-{len(runs) + 1}", model=prepared_with),
            None if preset == "none" else preset,
        )
        config, submitted = config_form(defaults, key=f"train-form-{preset}")
        if submitted:
            with user_errors():
                run = start_run(replace(config, data=data), ws)
                st.session_state[SELECTED_RUN] = run.name
                st.success(f"Started **{run.name}**")
                runs = list_runs(ws.runs)

if runs:
    current = st.session_state.get(SELECTED_RUN)
    name = st.selectbox(
        "Run", runs[::-1], index=runs[::-1].index(current) if current in runs else 0, key="train_run_picker"
    )
    st.session_state[SELECTED_RUN] = name

    @st.fragment(run_every=2)
    def live_view(name: str) -> None:
        run = RunFolder.of(ws, name)
        status, metrics = run.status(), run.metrics()
        state, step, total = status.get("state", "unknown"), status.get("step", 0), status.get("total", 0) or 1
        head = st.columns([3, 1, 1])
        head[0].progress(
            min(step / total, 1.0),
            text=f"**{state}** · step {step}/{total} · ETA {format_duration(eta_seconds(status, metrics))}",
        )
        if state in LIVE_STATES and head[1].button("Stop", icon=":material/stop:", key=f"stop-{name}"):
            with user_errors():
                stop_run(run)
        if state in RESUMABLE_STATES and head[2].button("Resume", icon=":material/replay:", key=f"resume-{name}"):
            with user_errors():
                resume_run(run, ws)
        if status.get("error"):
            st.error(f"{state}: {status['error']}")
        if status.get("note"):
            st.info(status["note"])
        for warning in run_warnings(metrics):
            st.warning(warning, icon=":material/warning:")
        last = next((r for r in reversed(metrics) if "loss" in r), {})
        best = run.best() or {}
        baseline = next((r["eval_wer"] for r in metrics if r.get("baseline")), None)
        cols = st.columns(4)
        cols[0].metric("Loss", f"{last['loss']:.3f}" if "loss" in last else "–")
        cols[1].metric("Best WER", percent(best.get("wer")), help=best.get("checkpoint"))
        cols[2].metric("Base model WER", percent(baseline))
        memory = last.get("gpu_memory_gb")
        cols[3].metric(
            "Samples/s",
            f"{last.get('samples_per_second', 0):.1f}",
            help=f"GPU memory {memory:.1f} GiB" if memory else "CPU",
        )
        charts = st.columns(3)
        wer_chart = error_rate_curves(metrics)
        if wer_chart is not None:
            charts[0].altair_chart(wer_chart.properties(title="WER / CER (dashed: base model)"), width="stretch")
        for column, chart in zip(charts[1:], training_curves(metrics).values()):
            column.altair_chart(chart, width="stretch")
        with st.expander("Last log lines"):
            st.code("\n".join(run.log_tail(15)) or "(empty)", language=None)

    live_view(name)

    @st.fragment(run_every=5)
    def all_runs() -> None:
        st.subheader("All runs")
        table = pd.DataFrame([RunFolder.of(ws, r).summary() for r in list_runs(ws.runs)[::-1]])
        for column in ("best_wer", "baseline_wer"):
            table[column] = table[column].map(percent)
        st.dataframe(table, width="stretch", hide_index=True)

    all_runs()
