"""The sidebar every page shows: selection, the live job with its ETA, the device and the workspace.

The live-job block is a fragment that re-runs every few seconds on its own, so the rest of the page stays still.
On an empty workspace it offers the offline demo in one click (a background job: close the tab, it goes on).
"""

from __future__ import annotations

import streamlit as st

from app.common import SELECTED_DATASET, SELECTED_RUN, device_summary, user_errors, workspace
from core.data.artifact import list_artifacts
from core.training.jobs import command_job, command_job_state, command_job_tail, live_run, start_command_job
from core.training.monitor import eta_seconds, format_duration
from core.training.runs import list_runs

DEMO_JOB = "demo"


@st.fragment(run_every=3)
def live_job() -> None:
    ws = workspace()
    run = live_run(ws)
    if run:
        status = run.status()
        step, total = status.get("step", 0), status.get("total", 0) or 1
        st.markdown(f"**Training** `{run.name}` · {status.get('state')}")
        st.progress(
            min(step / total, 1.0),
            text=f"step {step}/{total} · ETA {format_duration(eta_seconds(status, run.metrics()))}",
        )
    demo = command_job(ws, DEMO_JOB)
    if demo and command_job_state(demo) == "running":
        st.markdown("**Offline demo** running")
        st.caption("\n\n".join(command_job_tail(demo, 2)))
    elif not run:
        st.caption("No job running.")


def render_sidebar() -> None:
    ws = workspace()
    with st.sidebar:
        st.markdown("### Whisper Studio")
        datasets, runs = list_artifacts(ws), list_runs(ws.runs)
        # what this tab looks at: its choice, else the newest of each (a fresh tab on a busy workspace)
        newest = max(datasets, key=lambda name: ws.dataset(name).stat().st_mtime) if datasets else None
        dataset = st.session_state.get(SELECTED_DATASET) or newest
        run = st.session_state.get(SELECTED_RUN) or (runs[-1] if runs else None)  # list_runs: oldest first
        st.caption(f"Dataset: **{dataset or '–'}**  \nRun: **{run or '–'}**")
        live_job()
        if not datasets and not runs:
            st.info(
                "Empty workspace. Try the whole pipeline offline: espeak-ng Norwegian speech → OpenAI's "
                "whisper-base measured, fine-tuned on this machine and measured again on held-out sentences "
                "(about 10 minutes on 2 CPU cores)."
            )
            if st.button("Run the offline demo", icon=":material/play_arrow:", key="sidebar_demo"):
                with user_errors():
                    start_command_job(ws, DEMO_JOB, ["demo", "--language", "nb"])
                    st.toast("Demo started: watch it on the Train page once training begins")
        st.divider()
        st.caption(f"Device: {device_summary()}  \nWorkspace: `{ws.home}`")
