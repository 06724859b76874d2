"""Compare: WER/CER of every checkpoint on every test set, WER over steps, utterances to read and hear."""

import pandas as pd
import streamlit as st

from app.charts import before_after_bars, error_rate_curves
from app.publish_panel import publish_panel
from app.students import students_table
from app.tab_state import workspace
from app.utterances import utterance_drill_down
from app.widgets import progress_callback, user_errors
from core.data import list_artifacts, open_artifact
from core.errors import DamagedFile
from core.evaluation import (
    EvaluateOptions,
    ExportOptions,
    checkpoint_choices,
    config_diff,
    dataset_of,
    evaluate_model,
    export_with_parity,
    list_evaluations,
    unreadable_evaluations,
)
from core.models import EXPORT_FORMATS, EXPORT_RUNTIMES, QUANTIZATIONS
from core.option_fields import field_label
from core.speech import serve_command
from core.training import RunFolder, list_runs

PICKED_FOR = "compare_data_for"  # the model the test-set picker last followed
METRICS = {"wer": "WER", "cer": "CER", "wer_raw": "WER, raw text", "cer_raw": "CER, raw text"}

ws = workspace()
st.title("Compare")
runs = list_runs(ws.runs)

runs_tab, evaluate_tab, utterances_tab = st.tabs(["Runs", "Evaluate, export, publish", "Evaluations and utterances"])

with runs_tab:
    if runs:
        summaries = [RunFolder.of(ws, name).summary() for name in runs[::-1]]
        st.subheader("Held-out test WER: before and after fine-tuning")
        bars = before_after_bars(summaries)
        if bars is not None:
            st.altair_chart(bars, width="stretch")
        st.table(pd.DataFrame([s.table_row() for s in summaries]).set_index("Run"))
        st.caption(
            "Test: the held-out split, evaluated once with the starting model and once with the best checkpoint "
            "(the change with its 95% paired-bootstrap interval). Guards: sets the run must not get worse on. "
            "Probe words: words written on clips with no speech (made up). Validation: what picked the checkpoint."
        )
        students_table(ws, runs)  # smaller models beside their teachers (app/students.py)

    st.subheader("Validation WER over training steps")
    chart = error_rate_curves({name: RunFolder.of(ws, name).metrics() for name in runs}) if runs else None
    if chart is not None:
        st.altair_chart(chart, width="stretch")
    else:
        st.caption("No evaluations logged yet: runs evaluate as they train.")

    if len(runs) >= 2:
        st.subheader("Config diff")
        cols = st.columns(2)
        a = cols[0].selectbox("Run A", runs[::-1], key="diff_a")
        b = cols[1].selectbox("Run B", runs[::-1], index=1, key="diff_b")
        with user_errors():
            diff = config_diff(RunFolder.of(ws, a), RunFolder.of(ws, b)) if a != b else []
            if diff:
                table = pd.DataFrame(diff).astype(str)
                table["field"] = table["field"].map(field_label)  # the form's words: 'warmup steps'
                st.table(table.set_index("field"))  # HTML: the words can be read and found
            else:
                st.caption("Same config.")

with evaluate_tab:
    st.subheader("Evaluate a checkpoint")
    choices, datasets = checkpoint_choices(ws), list_artifacts(ws)
    if choices and datasets:
        cols = st.columns([3, 2, 1])
        model_label = cols[0].selectbox("Model", list(choices), key="compare_model")
        # the test set follows the model: a run's checkpoint is measured on the run's own dataset unless you choose
        own = dataset_of(choices[model_label])
        if st.session_state.get(PICKED_FOR) != model_label:
            st.session_state[PICKED_FOR] = model_label
            st.session_state.pop("compare_data", None)
        data = cols[1].selectbox(
            "Test set", datasets, index=datasets.index(own) if own in datasets else 0, key="compare_data"
        )
        try:
            splits = open_artifact(ws, data).eval_splits()[::-1] or ["train"]
        except DamagedFile as err:
            st.error(str(err), icon=":material/broken_image:")
            splits = ["test"]
        split = cols[2].selectbox("Split", splits, key="compare_split")
        buttons = st.columns([1, 1, 2])
        if buttons[0].button("Evaluate", icon=":material/fact_check:"):
            bar = st.progress(0.0)
            with user_errors():
                result = evaluate_model(
                    choices[model_label], data, ws, EvaluateOptions(split=split), progress_callback(bar)
                )
                st.success(f"{model_label} on {data}/{split}: {result.shown}")
        quantization = (
            buttons[2].segmented_control(
                "CTranslate2", list(QUANTIZATIONS), default=QUANTIZATIONS[0], key="compare_quantization"
            )
            or QUANTIZATIONS[0]
        )
        formats = st.multiselect(
            "Export formats",
            list(EXPORT_FORMATS),
            default=[EXPORT_FORMATS[0]],
            format_func=lambda f: f"{f}: {EXPORT_RUNTIMES[f]}",
            key="compare_export_formats",
        )
        if buttons[1].button("Export", icon=":material/bolt:", help="export, then WER parity in each format's runtime"):
            with user_errors(), st.spinner("Exporting and checking WER parity in each runtime…"):
                options = ExportOptions(quantization, data, split, formats=formats or EXPORT_FORMATS[:1])
                for exported, checks in export_with_parity(choices[model_label], ws, options):
                    st.success(exported.summary)
                    for check in checks:
                        (st.error if check.failed else st.success)(check.summary)
        with st.expander("Serve this model to other apps (OpenAI-compatible)"):
            st.code(serve_command(choices[model_label]), language="bash")
            st.caption(
                "Any OpenAI client then transcribes with it: base_url `http://127.0.0.1:8000/v1`, "
                "`client.audio.transcriptions.create(model=…, file=…)`; see the README's serving section."
            )
    else:
        st.caption("Train a run and prepare a test set to evaluate checkpoints here.")

    if choices:
        publish_panel(ws, choices)

with utterances_tab:
    st.subheader("WER / CER matrix")
    evaluations = list_evaluations(ws)
    for problem in unreadable_evaluations(ws):
        st.error(problem, icon=":material/broken_image:")
    if evaluations:
        table = pd.DataFrame([e.to_row() for e in evaluations])
        metric = (
            st.segmented_control("Metric", list(METRICS), default="wer", key="compare_metric", format_func=METRICS.get)
            or "wer"
        )
        matrix = table.pivot_table(index="model", columns="test set", values=metric, aggfunc="last") * 100
        st.dataframe(
            matrix,
            width="stretch",
            column_config={c: st.column_config.NumberColumn(format="%.1f%%") for c in matrix.columns},
        )
        st.caption(
            f"{METRICS[metric]} of each model on each test set. WER and CER compare the texts after Whisper's "
            "BasicTextNormalizer (case and punctuation aside); raw compares them as written."
        )

        st.subheader("Utterances")
        utterance_drill_down(ws, evaluations)
    else:
        st.caption("No saved evaluations yet.")
