"""The offline demo: espeak-ng speech → features → train the small demo model → held-out WER, on a CPU.

It needs no network and no GPU, and shows the whole product working: the untrained model's WER (~100%) and the
fine-tuned one's (a few %) on held-out utterances. The sizes below are chosen so 2 CPU cores finish in minutes.
"""

from __future__ import annotations

import time
from dataclasses import replace

from core.config import TrainConfig, apply_preset
from core.errors import StudioError
from core.evaluation import evaluate_model
from core.features import PrepareOptions, prepare_features
from core.folders import FolderSource
from core.jobs import start_run
from core.languages import Language
from core.models import DEMO
from core.runs import RunFolder
from core.synth import SynthSpec, synthesize_dataset
from core.workspace import Workspace

DEMO_UTTERANCES = 1600  # 10% held out: 160 test utterances of 1–4 words
DEMO_VOCABULARY = 30  # the word list's first 30 words: small enough for a 4M-parameter model to master


def demo_names(language: Language) -> tuple[str, str]:
    return f"demo-{language.code}", f"demo-{language.code}-{time.strftime('%Y%m%d-%H%M%S')}"


def run_demo(
    language: Language,
    workspace: Workspace,
    log=print,
    progress=None,
    max_steps: int | None = None,
    n: int = DEMO_UTTERANCES,
) -> dict:
    """Synthesize, prepare, train and evaluate in this process; returns before/after WER and the run name."""
    started = time.time()
    data_name, run_name = demo_names(language)
    spec = SynthSpec(language=language.code, n=n, seed=0, vocabulary_size=DEMO_VOCABULARY)
    folder = workspace.synth / f"demo-{language.code}-{n}"
    log(f"1/4 synthesizing {n} utterances with espeak-ng → {folder}")
    synthesize_dataset(language, folder, spec, progress=lambda d, t: progress and progress("synth", d, t))
    log(f"2/4 preparing features for the demo model → dataset {data_name}")
    artifact = prepare_features(
        FolderSource(folder), language, DEMO, data_name, workspace, PrepareOptions(), overwrite=True, progress=progress
    )
    config = apply_preset(TrainConfig(data=data_name, run=run_name), "demo")
    if max_steps:
        every = min(config.eval_steps, max_steps)
        config = replace(
            config,
            max_steps=max_steps,
            warmup_steps=min(config.warmup_steps, max_steps // 4),
            eval_steps=every,
            save_steps=every,
        )
    log(
        f"3/4 training run {run_name}: {config.max_steps} steps × batch {config.train_batch_size} "
        f"on {artifact.manifest['splits']['train']['rows']} utterances"
    )
    run = start_run(config, workspace, foreground=True)
    status = run.status()
    if status.get("state") != "completed":
        raise StudioError(f"demo training ended {status.get('state')}: {status.get('error')}")
    best = run.best() or {}
    checkpoint = run.path / best.get("checkpoint", run.last_checkpoint().name)
    log(f"4/4 evaluating {checkpoint.name} on {artifact.manifest['splits']['test']['rows']} held-out utterances")
    result = evaluate_model(str(checkpoint), data_name, workspace, split="test")
    before = next((r["eval_wer"] for r in RunFolder.of(workspace, run_name).metrics() if r.get("baseline")), None)
    return {
        "run": run_name,
        "data": data_name,
        "checkpoint": str(checkpoint),
        "wer_before": before,
        "wer_after": result["wer"],
        "cer_after": result["cer"],
        "seconds": time.time() - started,
    }
