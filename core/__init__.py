"""Whisper Studio's engine: data sources, features, models, training, evaluation, transcription and jobs.

Usable without Streamlit (it never imports it): the app's pages and the `python -m core` command line are two thin
front ends over the same functions. The engine's API, in the order of the work:

    source = open_source("fleurs", get_language("nb"))           # or a folder, a Hub id; synthesize_dataset(...)
    artifact = prepare_features(source, language, "whisper-base", "fleurs-nb", Workspace.open())
    run = start_run(TrainConfig(data="fleurs-nb", run="nb-1"), workspace)      # a background job; stop/resume_run
    evaluate_model(str(run.path / run.best_checkpoint_name()), "fleurs-nb", workspace)
    Transcriber("whisper-base", workspace).transcribe_file("meeting.m4a")
    run_demo(get_language("nb"), workspace)                       # all of it, offline

The rooms, bottom to top (a room imports only from rooms below it; tests/test_layout.py checks it):

    errors, workspace, languages   the ground floor
    audio/   text/                 decoding, log-mel, VAD; cleaning, WER
    models/                        names → folders, installed whisper-base, conversion, CTranslate2 export
    data/                          sources → examples → rows → features (the artifact), doctor, synthetic speech
    training/                      config, trainer, encoder cache, run folders, jobs, worker, monitor
    speech/                        transcription, live microphone, conversation
    evaluation/                    evaluate, parity, comparison
    demo, publish, cli             the top: they use everything, nothing uses them

Each package's names are imported on first use (`lazy_api`): importing torch and transformers takes seconds, so
`import core` stays instant and the command line starts fast.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

__version__ = "0.3.0"
ASSETS = Path(__file__).resolve().parent.parent / "assets"  # the files the product ships: tokenizer, texts, tables


def lazy_api(package: str, api: dict[str, str]) -> tuple[Callable[[str], object], list[str]]:
    """(`__getattr__`, `__all__`) for a package whose public names live in its modules: `api` maps each name to
    the module (relative to `package`) that defines it, imported the first time the name is asked for."""

    def __getattr__(name: str):
        if name in api:
            return getattr(importlib.import_module(f"{package}.{api[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__, sorted(api)


__getattr__, __all__ = lazy_api(
    __name__,
    {
        "Workspace": "workspace",
        "StudioError": "errors",
        "get_language": "languages",
        "open_source": "data.sources",
        "synthesize_dataset": "data.synth",
        "prepare_features": "data.features",
        "open_artifact": "data.artifact",
        "TrainConfig": "training.config",
        "start_run": "training.jobs",
        "stop_run": "training.jobs",
        "resume_run": "training.jobs",
        "RunFolder": "training.runs",
        "evaluate_model": "evaluation.evaluate",
        "Transcriber": "speech.inference",
        "run_demo": "demo",
    },
)
