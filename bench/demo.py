"""The offline demo, timed end to end: `python -m core demo --language nb` from an empty workspace.

Everything a user waits for is inside the time: reassembling and converting whisper-base, espeak-ng synthesis,
features, caching encoder states, the zero-shot test evaluation, training, the final test evaluation. The held-out
test split is the demo's own (its sentences never heard in training, never used to pick the checkpoint). For
context the same test split is also evaluated with whisper-base at its native 30 s window (the run's "before" uses
the run's 10 s window). Run with replay off and on (10%), REPEATS times each in alternating order, with what else
changed beside the target: the free sentences (written apart from the templates: the figure beyond them), the
English guard, the no-speech probes, language ID; and where the time went, phase by phase (wall and CPU seconds:
the demo's own phases from its demo.json, the run's from its status.json). Goal (issues 19 and 32): with replay on,
target after ≤ half of before, English within +5 points of the base, probe words no more than the base's, the free
sentences measurably better (the 95% interval of their change below zero), within 10 minutes on 2 quiet cores.

    python bench/demo.py [--language nb] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT

from bench.report import write_section
from core.demo import DEMO_FILE, PLANS
from core.evaluation import EvaluateOptions, evaluate_model
from core.models.resolve import DEFAULT_MODEL
from core.workspace import Workspace

GOAL_MINUTES = 10
QUIET_SHARE = 0.1  # other processes using under a tenth of the cores: a quiet machine
# the run's phases (status.json) and the demo's own (demo.json), in the order they happen, grouped for the table
PHASES = (
    ("synthesizing speech", ("synthesizing speech",)),
    ("features (with whisper-base's reassembly and conversion)", ("preparing features",)),
    ("free sentences: speech and features", ("free sentences",)),
    ("loading the model", ("loading the model",)),
    ("English reference set (replay, guard): speech and features", ("preparing the replay set",)),
    ("caching encoder states", ("caching encoder states",)),
    ("guard sets and probes: log-mel, encoder states", ("preparing guard sets and probes",)),
    ("test split, base model (with guards, probes, language ID)", ("testing the base model",)),
    ("validation evaluations (step 0 and every 25 steps)", ("evaluating the validation split",)),
    ("guard sets and probes at each evaluation", ("guard sets and probes",)),
    ("training steps and checkpoints", ("training",)),
    ("test split, best checkpoint (language ID)", ("testing the best checkpoint",)),
)


def busy_cpu_seconds() -> float:
    """CPU seconds every core of this machine has been busy since boot (/proc/stat: all but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def run_demo(home: Path, language: str, model: str, replay: float) -> dict:
    """One demo from an empty workspace, as a user runs it; its wall time, what else used the CPU meanwhile, and
    what its run folder recorded. The load average would count the demo itself (it keeps both cores busy), so the
    machine's quiet is measured as the CPU time others used: the machine's busy seconds less the demo's own."""
    busy_before, own_before = busy_cpu_seconds(), resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "core", "demo", "--language", language, "--model", model, "--home", str(home)]
        + ["--replay-fraction", str(replay)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    own_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = (own_after.ru_utime - own_before.ru_utime) + (own_after.ru_stime - own_before.ru_stime)
    others = max(0.0, busy_cpu_seconds() - busy_before - own) / (seconds * (os.cpu_count() or 1))
    if result.returncode != 0:
        raise SystemExit(result.stderr[-3000:])
    run = next(p for p in (home / "runs").iterdir() if (p / "config.json").is_file())
    phases = json.loads((run / DEMO_FILE).read_text())["phases"]
    phases.update(json.loads((run / "status.json").read_text()).get("phase_seconds", {}))
    return {
        "seconds": seconds,
        "others": others,  # share of all cores' time that other processes used during the demo
        "config": json.loads((run / "config.json").read_text()),
        "result": json.loads((run / "result.json").read_text()),
        "phases": phases,
        "home": home,
    }


def _interval(change: dict | None) -> str:
    if not change:
        return "–"
    text = f"{100 * change['low']:+.1f} to {100 * change['high']:+.1f}"
    return text if not change["low"] <= 0 <= change["high"] else f"{text}, no measurable difference"


def _minutes(runs: list[dict]) -> str:
    """'9.1 min' or '9.1 min (8.7–9.6)': the median wall time and its range."""
    minutes = [m["seconds"] / 60 for m in runs]
    median = statistics.median(minutes)
    return f"{median:.1f} min" + (f" ({min(minutes):.1f}–{max(minutes):.1f})" if len(minutes) > 1 else "")


def _row(label: str, runs: list[dict]) -> list[str]:
    m = runs[-1]  # the figures are the same every time (seeded); the time is the median
    before, after, changes = m["result"]["before"], m["result"]["after"], m["result"].get("changes", {})
    cells = [label, _minutes(runs), f"{100 * max(r['others'] for r in runs):.0f}%"]
    cells.append(f"{100 * before['wer']:.1f}% → {100 * after['wer']:.1f}% ({_interval(changes.get('test'))})")
    for name in _guards(m):
        b, a = before["guards"][name]["wer"], after["guards"][name]["wer"]
        cells.append(f"{100 * b:.1f}% → {100 * a:.1f}% ({_interval(changes.get(name))})")
    cells.append(f"{before['probes']['probe_words']} → {after['probes']['probe_words']}")
    cells.append(f"{100 * before['language_accuracy']:.0f}% → {100 * after['language_accuracy']:.0f}%")
    return cells


def _guards(m: dict) -> list[str]:
    """The free sentences first, then the English guard."""
    return sorted(m["result"]["after"].get("guards", {}), key=lambda n: not n.startswith("demo-"))


def _phase_rows(measured: dict[float, list[dict]]) -> list[list[str]]:
    """One row per phase group: wall and CPU seconds (median over the repeats) for each side; then the rest (start-up,
    imports, writing the result) and the whole."""
    rows, accounted = [], {replay: [0.0] * len(runs) for replay, runs in measured.items()}
    for label, names in PHASES:
        cells = [label]
        for replay, runs in measured.items():
            spent = [[0.0, 0.0] for _ in runs]
            for i, run in enumerate(runs):
                for phase, (wall, cpu) in run["phases"].items():
                    if any(phase == n or phase.startswith(n + ":") for n in names):
                        spent[i][0] += wall
                        spent[i][1] += cpu
                accounted[replay][i] += spent[i][0]
            wall = statistics.median(s[0] for s in spent)
            cpu = statistics.median(s[1] for s in spent)
            cells.append(f"{wall:.0f} s / {cpu:.0f} s" if wall or cpu else "–")
        rows.append(cells)
    rest, whole = ["the rest (start-up, imports, the result)"], ["**the whole demo**"]
    for replay, runs in measured.items():
        rest.append(f"{statistics.median(r['seconds'] - a for r, a in zip(runs, accounted[replay])):.0f} s")
        whole.append(f"**{statistics.median(r['seconds'] for r in runs):.0f} s**")
    return rows + [rest, whole]


def _goal(runs: list[dict]) -> tuple[bool, list[str]]:
    m = runs[-1]
    before, after = m["result"]["before"], m["result"]["after"]
    english = next(n for n in after["guards"] if n.startswith("english-"))
    free = next((n for n in after["guards"] if n.startswith("demo-")), None)
    free_change = m["result"].get("changes", {}).get(free) if free else None
    checks = {
        "target after ≤ ½ before": after["wer"] <= before["wer"] / 2,
        "English guard within +5 points": 100 * (after["guards"][english]["wer"] - before["guards"][english]["wer"])
        <= 5,
        "probe words ≤ the base model's": after["probes"]["probe_words"] <= before["probes"]["probe_words"],
        "free sentences measurably better": bool(free_change and free_change["high"] < 0),
        f"within {GOAL_MINUTES} minutes": statistics.median(r["seconds"] for r in runs) / 60 <= GOAL_MINUTES,
    }
    return all(checks.values()), [f"{k}: {'met' if v else 'missed'}" for k, v in checks.items()]


def _table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--language", default="nb")
    parser.add_argument("--repeats", type=int, default=1, help="demos per side, in alternating order")
    args = parser.parse_args()
    sides = (0.0, 0.1)
    measured: dict[float, list[dict]] = {side: [] for side in sides}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.repeats):  # each from an empty workspace: everything a user waits for is timed
            for replay in sides if round_ % 2 == 0 else sides[::-1]:
                home = Path(tmp) / f"ws-{replay}-{round_}"
                measured[replay].append(run_demo(home, args.language, DEFAULT_MODEL, replay))
        on = measured[0.1][-1]
        native = evaluate_model(
            "whisper-base", on["config"]["data"], Workspace(on["home"]), EvaluateOptions(split="test")
        )
    config, after = on["config"], on["result"]["after"]
    head = ["replay", "wall time", "CPU used by other work", "target test WER (95% CI of the change)"]
    head += [f"{'free sentences' if g.startswith('demo-') else 'English guard'} `{g}`" for g in _guards(on)]
    head += ["probe words (9 clips, no speech)", "language ID (target)"]
    table = _table(head, [_row("off", measured[0.0]), _row("10%", measured[0.1])])
    phases = _table(["phase", "replay off: wall / CPU", "replay 10%: wall / CPU"], _phase_rows(measured))
    met, lines = _goal(measured[0.1])
    _, lines_off = _goal(measured[0.0])
    others = max(r["others"] for runs in measured.values() for r in runs)
    if others < QUIET_SHARE:
        machine = f"The machine was quiet (other work used at most {100 * others:.0f}% of the cores during a demo)"
    else:
        machine = (
            f"The machine was not quiet (other work used up to {100 * others:.0f}% of the cores during a demo): "
            "these are not quiet-machine wall times, and a time goal missed here is not the quiet figure"
        )
    estimate = PLANS[DEFAULT_MODEL].estimate
    body = f"""## Offline demo (`bench/demo.py`)

`python -m core demo --language {args.language}` from an empty workspace, on 2 CPU cores, with replay off and with
10% replay (its default), {args.repeats} time(s) each: whisper-base reassembled and converted, espeak-ng sentences
synthesized and split by text, features prepared, the English reference set made, encoder states cached, whisper-base
evaluated zero-shot on the held-out test split, the decoder fine-tuned with the `whisper-base-cpu` preset
({config["max_steps"]} steps × batch {config["train_batch_size"]}, {config["window_seconds"]} s window, frozen
encoder), the best checkpoint by validation WER evaluated on the same test split ({after["utterances"]} template
sentences never heard in training), on the 40 free sentences written apart from the templates (no generated sentence
equals one), on the English guard (30 held-out espeak-ng English sentences) and on the nine no-speech probes. Every
figure is before → after, with the 95% paired-bootstrap interval of the change. Transcripts are capped at 10 tokens a
second of their clip (as transcription caps them), so a looping base model stops where the speech ends.

{table}

Where the time went (median wall seconds / CPU seconds of the demo's process and its espeak-ng children, by phase):

{phases}

Goal with replay on (target after ≤ ½ before, English within +5 points of the base, probe words no more than the base
model's, the free sentences measurably better, within {GOAL_MINUTES} minutes on quiet cores):
**{"met" if met else "missed"}** ({"; ".join(lines)}). Replay off: {"; ".join(lines_off)}.
{machine}; the README, `demo --help` and the sidebar say
"{estimate}".

Read the English column with care: replay's sentences and the English guard's come from the same English templates
and the same synthesizer (split by text, so no sentence is shared), so with replay on the model is trained on the
guard's own domain and its English figure improves past the base model's; that shows replay stops the drift the
replay-off run shows, not that English on other voices and texts is kept. A guard of real English recordings
(`--guard DATASET`) is the test of that.

For context, whisper-base at its native 30 s window, decoded as `python -m core evaluate` does, scores
{100 * native.wer:.1f}% WER on the same template test split; the demo's "before" is the run's own starting model at its
10 s window. The template test sentences are new, their words mostly are not: the free sentences are the figure to
expect on text of the same language outside the templates."""
    write_section("demo", body)
    print(body)


if __name__ == "__main__":
    main()
