"""The offline demo: what a user does with the product, end to end, on a CPU with no network.

With whisper-base (the default): espeak-ng sentences → features → the zero-shot WER of OpenAI's whisper-base on
the held-out test split → fine-tuning with the fastest lever that works on a CPU (the `whisper-base-cpu` preset:
encoder frozen and run once per clip, 10 s window, decoder trained from the cache) → the test split again with the
best checkpoint. Both figures are whisper-base on the same test sentences, none of which was heard in training or
chose the checkpoint (validation did). With `--model demo` the 4M-parameter toy learns 30 words from scratch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from core.errors import StudioError
from core.formatting import percent
from core.languages import Language
from core.models.resolve import DEFAULT_MODEL, DEMO
from core.workspace import Workspace, write_json_atomic


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
        # 4.9 min measured on a quiet machine (bench/demo.py, 2026-12-05: other work used 1% of the cores; 4.7 with
        # replay off); the same code took 8.0 min on the 2-core machine of the day before: CPUs differ. Caching encoder
        # states and training steps are 2/3 of it (BENCHMARKS.md)
        DEFAULT_MODEL,
        "whisper-base-cpu",
        800,
        0.125,
        0.075,
        minutes=5.0,
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

    def lines(self) -> list[str]:
        """What the `demo` command prints: the run, what else changed, and the held-out WER before → after."""
        return [
            f"run {self.run}, {self.seconds / 60:.1f} min; best checkpoint {self.checkpoint}",
            *self.report,
            f"held-out test split, {self.test_utterances} utterances, {self.model} before and after fine-tuning:",
            f"WER before {percent(self.wer_before)} → after {percent(self.wer_after)}",
        ]


@dataclass(frozen=True)
class DemoRequest:
    """What a demo is asked for (the `demo` command's flags): the base model (a key of PLANS), and where given,
    fewer training steps, another number of utterances, another share of English replay (None: the plan's)."""

    model: str = DEFAULT_MODEL
    max_steps: int | None = None
    utterances: int | None = None
    replay_fraction: float | None = None

    def checked(self) -> tuple[DemoPlan, int]:
        """The plan for the model and the number of utterances, or StudioError naming what to give instead."""
        if self.model not in PLANS:
            raise StudioError(f"demo model '{self.model}': choose one of {', '.join(PLANS)}")
        plan = PLANS[self.model]
        n = plan.utterances if self.utterances is None else self.utterances
        if not 20 <= n <= 100_000:
            raise StudioError(f"--utterances {n}: choose 20 to 100000 (the demo needs train, validation and test rows)")
        if self.max_steps is not None and self.max_steps < 1:
            raise StudioError(f"--max-steps {self.max_steps}: give at least 1")
        return plan, n


def run_demo(
    language: Language,
    workspace: Workspace,
    request: DemoRequest | None = None,
    log=print,
    progress=None,
) -> DemoResult:
    """Synthesize, prepare, train and evaluate in this process; returns the test WER before and after. What the
    libraries say on the way (warnings, log records, progress bars) goes to the run's train.log, not to `log`."""
    # imported here, not at the top: they take 1.8 s, and the command line's parser reads PLANS on every start
    from core.training.jobs import start_run
    from core.training.library_output import library_output_to
    from core.training.run_records import RunState

    request = request or DemoRequest()
    plan, n = request.checked()
    demo = _Demo(language, workspace, request, plan, n, log, progress)
    run_name = f"{demo.tag}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_log = workspace.run(run_name) / "train.log"  # the run folder holds its log from the first phase on
    run_log.parent.mkdir(parents=True, exist_ok=True)
    with open(run_log, "a", encoding="utf-8") as library_log, library_output_to(library_log):
        # 1.–2. Speech and features, and the free sentences (another domain of the same language).
        artifact = demo.data()
        free = demo.free_sentences() if plan.free_sentences else None
        # 3. Fine-tuning: the test split is evaluated with the starting model first, then with the best checkpoint;
        # the free sentences and English are guarded on the way.
        config = demo.training_config(artifact.name, run_name, guard=free)
        manifest = artifact.manifest
        log(
            f"3/4 training run {config.run} ({config.model}, preset {plan.preset}): {config.max_steps} steps × "
            f"batch {config.train_batch_size} on {manifest.rows('train')} utterances; {manifest.rows('test')} "
            f"held out"
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
    seconds = time.time() - demo.started
    # where the time went: the demo's own phases here, the run's in its status.json (phase_seconds)
    write_json_atomic(run.path / DEMO_FILE, {"seconds": round(seconds, 2), "phases": demo.phases})
    return DemoResult(
        run=run.name,
        data=artifact.name,
        model=request.model,
        checkpoint=str(run.path / after.checkpoint),
        wer_before=before.wer,
        wer_after=after.wer,
        cer_before=before.cer,
        cer_after=after.cer,
        test_utterances=after.utterances,
        seconds=seconds,
        report=tuple(result.report_lines()),
    )


DEMO_FILE = "demo.json"  # in the demo's run folder: its wall time and the [wall s, CPU s] of its own phases


@dataclass
class _Demo:
    """What the demo's data steps share: the request, where they report, and the time each took."""

    language: Language
    workspace: Workspace
    request: DemoRequest
    plan: DemoPlan
    n: int
    log: Callable[[str], None]
    progress: Callable | None
    phases: dict[str, list[float]] = field(default_factory=dict)  # name → [wall s, CPU s]
    started: float = field(default_factory=time.time)

    @property
    def tag(self) -> str:
        return f"demo-{self.language.code}" + ("" if self.plan.model == DEFAULT_MODEL else f"-{self.plan.model}")

    def training_config(self, data: str, run: str, guard: str | None):
        """The plan's preset (shortened by `max_steps`), `guard` guarded, English replayed as asked or as planned."""
        replay = self.request.replay_fraction
        if replay is None:  # replay's English set shares templates with an English target's sentences: none there
            replay = self.plan.replay_fraction if self.language.whisper != "en" else 0.0
        config = _training_config(self.plan, data, run, self.request.max_steps)
        return replace(config, guard=guard or "", replay_fraction=replay)

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        """Record the block's [wall s, CPU s] (this process and its finished children: espeak-ng) as `name`."""
        from core.training.run_recorder import process_cpu_seconds

        wall, cpu = time.time(), process_cpu_seconds()
        yield
        self.phases[name] = [round(time.time() - wall, 2), round(process_cpu_seconds() - cpu, 2)]

    def data(self):
        """Steps 1–2: espeak-ng speech split by text, then its features with the model's own processor."""
        from core.data.features import Preparation, PrepareOptions
        from core.data.folders import FolderSource
        from core.data.synth import SynthSpec, default_kind, synthesize_dataset

        plan, progress = self.plan, self.progress
        kind = plan.kind or default_kind(self.language)
        spec = SynthSpec(
            language=self.language.code,
            n=self.n,
            seed=0,
            kind=kind,
            vocabulary_size=plan.vocabulary,
            test_fraction=plan.test_fraction,
            validation_fraction=plan.validation_fraction,
        )
        folder = self.workspace.synth / spec.folder_name(prefix="demo-")
        self.log(f"1/4 synthesizing {self.n} {kind} with espeak-ng → {folder}")
        with self.timed("synthesizing speech"):
            synthesize_dataset(self.language, folder, spec, progress=lambda d, t: progress and progress("synth", d, t))
        name = f"{self.tag}-{self.n}"
        self.log(f"2/4 preparing features for {plan.model} → dataset {name}")
        with self.timed("preparing features"):
            source = FolderSource(folder)
            options = PrepareOptions()
            preparation = Preparation(overwrite=True, progress=progress)
            return preparation.prepare(source, self.language, plan.model, name, self.workspace, options)

    def free_sentences(self) -> str | None:
        """The language's free sentences (written apart from the templates, so they share few words with
        training), spoken by espeak-ng and prepared as a test set; None where the language has none."""
        from core.data.features import PrepareOptions, prepare_features
        from core.data.folders import FolderSource
        from core.data.synth import free_sentences, speak_texts

        texts = free_sentences(self.language)
        if not texts:
            return None
        name = f"demo-{self.language.code}-free-{len(texts)}"
        self.log(f"   the {len(texts)} free sentences (another domain than the templates) → dataset {name}")
        with self.timed("free sentences"):
            folder = speak_texts(self.language, texts, self.workspace.synth / name)
            prepare_features(
                FolderSource(folder), self.language, self.plan.model, name, self.workspace, PrepareOptions()
            )
        return name


def _training_config(plan: DemoPlan, data: str, run: str, max_steps: int | None):
    """The plan's preset; with `max_steps`, shortened so that it still evaluates and saves at its end."""
    from core.training.config import TrainConfig, apply_preset

    config = apply_preset(TrainConfig(data=data, run=run), plan.preset)
    if not max_steps:
        return config
    every = min(config.eval_steps, max_steps)
    warmup = min(config.warmup_steps, max_steps // 4)
    return replace(config, max_steps=max_steps, warmup_steps=warmup, eval_steps=every, save_steps=every)
