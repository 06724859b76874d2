"""Whisper Studio's engine: data sources, features, models, training, evaluation, transcription and jobs.

Usable without Streamlit (it never imports it): the app's pages and the `python -m core` command line are two thin
front ends over the same functions. The engine's API, in the order of the work:

    source = open_source("fleurs", get_language("nb"))           # or a folder, a Hub id; synthesize_dataset(...)
    artifact = prepare_features(source, language, "whisper-base", "fleurs-nb", Workspace.open())
    run = start_run(TrainConfig(data="fleurs-nb", run="nb-1"), workspace)      # a background job; stop/resume_run
    evaluate_model(str(run.path / run.best_checkpoint_name()), "fleurs-nb", workspace)
    Transcriber("whisper-base", workspace).transcribe_file("meeting.m4a")
    run_demo(get_language("nb"), workspace)                       # all of it, offline

Names are imported on first use, so `import core` stays instant and the command line starts fast.
"""

from __future__ import annotations

import importlib

__version__ = "0.2.0"

_API = {
    "Workspace": "core.workspace",
    "get_language": "core.languages",
    "open_source": "core.data.sources",
    "synthesize_dataset": "core.data.synth",
    "prepare_features": "core.data.features",
    "open_artifact": "core.data.artifact",
    "TrainConfig": "core.training.config",
    "start_run": "core.training.jobs",
    "stop_run": "core.training.jobs",
    "resume_run": "core.training.jobs",
    "RunFolder": "core.training.runs",
    "evaluate_model": "core.evaluation.evaluate",
    "Transcriber": "core.speech.inference",
    "run_demo": "core.demo",
    "StudioError": "core.errors",
}
__all__ = sorted(_API)


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'core' has no attribute {name!r}")
