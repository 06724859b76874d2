"""The offline demo: what a user does with the product, end to end, on a CPU with no network.

With whisper-base (the default): espeak-ng sentences → features → the zero-shot WER of OpenAI's whisper-base on
the held-out test split → fine-tuning with the fastest lever that works on a CPU (the `whisper-base-cpu` preset:
encoder frozen and run once per clip, 10 s window, decoder trained from the cache) → the test split again with the
best checkpoint. Both figures are whisper-base on the same test sentences, none of which was heard in training or
chose the checkpoint (validation did). With `--model demo` the 4M-parameter toy learns 30 words from scratch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from core.errors import StudioError
from core.languages import Language
from core.models.resolve import DEFAULT_MODEL, DEMO
from core.workspace import Workspace


@dataclass(frozen=True)
class DemoPlan:
    """What the demo makes and trains for one base model."""

    model: str
    preset: str
    utterances: int  # split by text: test and validation fractions below, the rest trains
    test_fraction: float
    validation_fraction: float
    minutes: float  # measured on 2 CPU cores from an empty workspace (BENCHMARKS.md, bench/demo.py)
    kind: str | None = None  # synthetic text: None = sentences where the language has templates
    vocabulary: int | None = None  # words: the word list's first N
    replay_fraction: float = 0.0  # share of each epoch from the English reference set (forgetting's remedy)
    free_sentences: bool = False  # also test on sentences written apart from the templates (assets/free_sentences)

    @property
    def estimate(self) -> str:
        """What the README, the CLI and the sidebar say it takes."""
        return f"about {round(self.minutes)} minutes on 2 CPU cores"


PLANS = {
    # 800 sentences: 100 test, 60 validation, 640 train
    DEFAULT_MODEL: DemoPlan(
        # 5.4 min measured on a quiet machine before the guard sets, probes and replay; with them (two sets of 30–40
        # sentences and 9 probes at each of 6 evaluations, the English reference made once) an estimate until it is
        # measured quietly again: the last bench ran at 3× load (BENCHMARKS.md)
        DEFAULT_MODEL,
        "whisper-base-cpu",
        800,
        0.125,
        0.075,
        minutes=10.0,
        replay_fraction=0.1,
        free_sentences=True,
    ),
    # the toy: 30 words it must learn from scratch, 1–4 per utterance
    DEMO: DemoPlan(DEMO, "demo", 1600, 0.1, 0.05, minutes=3.0, kind="words", vocabulary=30),
}


@dataclass(frozen=True)
class DemoResult:
    """What the demo ends with: the held-out test split before and after fine-tuning."""

    run: str
    data: str
    model: str
    checkpoint: str  # the best checkpoint's folder
    wer_before: float
    wer_after: float
    cer_before: float
    cer_after: float
    test_utterances: int
    seconds: float
    report: tuple[str, ...] = ()  # what else changed: the interval, the guard sets, the probes, language ID


def run_demo(
    language: Language,
    workspace: Workspace,
    model: str = DEFAULT_MODEL,
    log=print,
    progress=None,
    max_steps: int | None = None,
    utterances: int | None = None,
    replay_fraction: float | None = None,
) -> DemoResult:
    """Synthesize, prepare, train and evaluate in this process; returns the test WER before and after."""
    # imported here, not at the top: they take 1.8 s, and the command line's parser reads PLANS on every start
    from core.data.features import PrepareOptions, prepare_features
    from core.data.folders import FolderSource
    from core.data.synth import SynthSpec, default_kind, synthesize_dataset
    from core.training.jobs import start_run
    from core.training.run_records import RunState

    plan, n = _checked_request(model, utterances, max_steps)
    started = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    tag = f"demo-{language.code}" + ("" if model == DEFAULT_MODEL else f"-{model}")
    kind = plan.kind or default_kind(language)
    spec = SynthSpec(
        language=language.code,
        n=n,
        seed=0,
        kind=kind,
        vocabulary_size=plan.vocabulary,
        test_fraction=plan.test_fraction,
        validation_fraction=plan.validation_fraction,
    )
    # 1. Speech with espeak-ng, split by text.
    folder = workspace.synth / spec.folder_name(prefix="demo-")
    log(f"1/4 synthesizing {n} {kind} with espeak-ng → {folder}")
    synthesize_dataset(language, folder, spec, progress=lambda d, t: progress and progress("synth", d, t))
    # 2. Features with the model's own processor.
    data_name = f"{tag}-{n}"
    log(f"2/4 preparing features for {model} → dataset {data_name}")
    artifact = prepare_features(
        FolderSource(folder), language, model, data_name, workspace, PrepareOptions(), overwrite=True, progress=progress
    )
    # 3. Fine-tuning: the test split is evaluated with the starting model first, then with the best checkpoint;
    # the free sentences (another domain of the same language) and English are guarded on the way.
    free = _free_sentences(language, model, workspace, log) if plan.free_sentences else None
    config = replace(
        _training_config(plan, data_name, f"{tag}-{stamp}", max_steps),
        guard=free or "",
        # replay's English set shares templates with an English target's sentences: none by default there
        replay_fraction=(plan.replay_fraction if language.whisper != "en" else 0.0)
        if replay_fraction is None
        else replay_fraction,
    )
    counts = artifact.manifest["splits"]
    log(
        f"3/4 training run {config.run} ({config.model}, preset {plan.preset}): {config.max_steps} steps × batch "
        f"{config.train_batch_size} on {counts['train']['rows']} utterances; {counts['test']['rows']} held out"
    )
    run = start_run(config, workspace, foreground=True)
    status = run.status()
    if status.state != RunState.COMPLETED:
        raise StudioError(f"demo training ended {status.state}: {status.error}")
    # 4. The held-out result the run recorded.
    result = run.result()
    before, after = result.before, result.after
    if before is None or after is None:
        raise StudioError(f"demo run {run.name} recorded no held-out result; see {run.path / 'train.log'}")
    log(f"4/4 test split: {after.utterances} utterances, best checkpoint {after.checkpoint}")
    return DemoResult(
        run=run.name,
        data=data_name,
        model=model,
        checkpoint=str(run.path / after.checkpoint),
        wer_before=before.wer,
        wer_after=after.wer,
        cer_before=before.cer,
        cer_after=after.cer,
        test_utterances=after.utterances,
        seconds=time.time() - started,
        report=tuple(result.report_lines()),
    )


def _free_sentences(language: Language, model: str, workspace: Workspace, log) -> str | None:
    """The language's free sentences (written apart from the templates, so they share few words with training),
    spoken by espeak-ng and prepared as a test set; None where the language has none."""
    from core.data.features import PrepareOptions, prepare_features
    from core.data.folders import FolderSource
    from core.data.synth import free_sentences, speak_texts

    texts = free_sentences(language)
    if not texts:
        return None
    name = f"demo-{language.code}-free-{len(texts)}"
    log(f"   the {len(texts)} free sentences (another domain than the templates) → dataset {name}")
    folder = speak_texts(language, texts, workspace.synth / name)
    prepare_features(FolderSource(folder), language, model, name, workspace, PrepareOptions())
    return name


def _checked_request(model: str, utterances: int | None, max_steps: int | None) -> tuple[DemoPlan, int]:
    """The plan for `model` and the number of utterances, or StudioError naming what to give instead."""
    if model not in PLANS:
        raise StudioError(f"demo model '{model}': choose one of {', '.join(PLANS)}")
    plan = PLANS[model]
    n = plan.utterances if utterances is None else utterances
    if not 20 <= n <= 100_000:
        raise StudioError(f"--utterances {n}: choose 20 to 100000 (the demo needs train, validation and test rows)")
    if max_steps is not None and max_steps < 1:
        raise StudioError(f"--max-steps {max_steps}: give at least 1")
    return plan, n


def _training_config(plan: DemoPlan, data: str, run: str, max_steps: int | None):
    """The plan's preset; with `max_steps`, shortened so that it still evaluates and saves at its end."""
    from core.training.config import TrainConfig, apply_preset

    config = apply_preset(TrainConfig(data=data, run=run), plan.preset)
    if not max_steps:
        return config
    every = min(config.eval_steps, max_steps)
    warmup = min(config.warmup_steps, max_steps // 4)
    return replace(config, max_steps=max_steps, warmup_steps=warmup, eval_steps=every, save_steps=every)
