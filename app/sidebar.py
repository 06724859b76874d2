"""The sidebar every page shows: selection, the live job with its ETA, the device and the workspace.

The live-job block is a fragment that re-runs every few seconds on its own while a job runs, so the rest of the page
stays still.
On an empty workspace it offers the offline demo in one click (a background job: close the tab, it goes on).
"""

from __future__ import annotations

import streamlit as st

from app.tab_state import DEMO_JOB, SELECTED_DATASET, SELECTED_RUN, action, show_outcome, workspace
from app.widgets import device_summary
from core.data import list_artifacts, newest_artifact
from core.demo import PLANS
from core.formatting import MISSING, format_duration
from core.models import DEFAULT_MODEL
from core.training import (
    command_job,
    command_job_state,
    command_job_tail,
    eta_seconds,
    list_runs,
    live_run,
    phase_progress,
    start_command_job,
)

DEMO_SIZES = (200, 400, 800, 1600, 3200)  # sentences the demo synthesizes: split by text into train/validation/test


DEMO_SIZE = "sidebar_demo_size"
DEMO_STARTED = "sidebar_demo_started"  # the outcome of the demo button


def start_demo(ws) -> str:
    size = st.session_state.get(DEMO_SIZE, PLANS[DEFAULT_MODEL].utterances)
    start_command_job(ws, DEMO_JOB, ["demo", "--language", "nb", "--utterances", str(size)])
    return "Demo started: watch it on the Train page once training begins"


def jobs_running(ws) -> bool:
    demo = command_job(ws, DEMO_JOB)
    return live_run(ws) is not None or bool(demo and command_job_state(demo) == "running")


def live_job(polling: bool) -> None:
    ws = workspace()
    if polling and not jobs_running(ws):
        st.rerun()  # the job ended: the page says so, and the polling stops
    run = live_run(ws)
    if run:
        status = run.status()
        doing, fraction = phase_progress(status)
        st.markdown(f"**Training** `{run.name}` · {status.state}")
        eta = eta_seconds(status, run.metrics())
        st.progress(fraction or 0.0, text=doing + (f" · ETA {format_duration(eta)}" if eta else ""))
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
        dataset = st.session_state.get(SELECTED_DATASET) or newest_artifact(ws)
        run = st.session_state.get(SELECTED_RUN) or (runs[-1] if runs else None)  # list_runs: oldest first
        st.caption(f"Dataset: **{dataset or MISSING}**  \nRun: **{run or MISSING}**")
        # polled every 3 s while a job runs, not at all otherwise: each fragment timer is a chance for Streamlit's
        # frontend to place elements at a stale position (under load, seen as a blank page); a job started
        # elsewhere (the command line) shows at the next click
        polling = jobs_running(ws)
        st.fragment(run_every=3 if polling else None)(live_job)(polling)
        show_outcome(DEMO_STARTED)
        if not datasets and not runs:
            plan = PLANS[DEFAULT_MODEL]
            st.info(
                "Empty workspace. Try the whole pipeline offline: espeak-ng Norwegian speech → OpenAI's "
                "whisper-base measured, fine-tuned on this machine and measured again on held-out sentences "
                f"({plan.estimate} at {plan.utterances} sentences; more take longer to make and prepare, the "
                "training steps stay the same)."
            )
            st.select_slider("Sentences", options=DEMO_SIZES, value=plan.utterances, key=DEMO_SIZE)
            # a callback: the job exists before the sidebar asks whether to poll (and no rerun can lose the click)
            st.button(
                "Run the offline demo",
                icon=":material/play_arrow:",
                key="sidebar_demo",
                on_click=action(DEMO_STARTED, start_demo, ws),
            )
        st.divider()
        st.caption(f"Device: {device_summary()}  \nWorkspace: `{ws.home}`")
