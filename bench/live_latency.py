"""Live latency: end of an utterance → final text, through the LiveSession the live page uses.

espeak-ng utterances with pauses are pushed in 20 ms chunks at real-time pace (as WebRTC delivers them) into a
LiveSession over the trained demo checkpoint, in PyTorch and as the CTranslate2 int8 export. Latency is measured
from the moment the voice stopped, so it includes the detector's SILENCE_END_S of waiting for quiet.

    python bench/live_latency.py [--utterances 20]
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from common import checkpoint_benchmark, speech

from bench.report import write_section
from core.audio import SAMPLE_RATE
from core.export import export_ctranslate2
from core.inference import Transcriber
from core.live import SILENCE_END_S, LiveSession

CHUNK = 320  # 20 ms


def latencies(transcriber: Transcriber, samples) -> list[float]:
    session = LiveSession(transcriber.text, max_utterance_s=transcriber.window / SAMPLE_RATE)
    started = time.monotonic()
    for i in range(0, len(samples), CHUNK):
        session.push(samples[i : i + CHUNK])
        time.sleep(max(0.0, started + (i + CHUNK) / SAMPLE_RATE - time.monotonic()))
    session.flush()
    session.wait_idle()
    return [u.latency_s for u in session.snapshot()["utterances"]]


def main() -> None:
    args, workspace, checkpoint = checkpoint_benchmark(__doc__, utterances=20)
    with tempfile.TemporaryDirectory() as tmp:
        samples, _ = speech(Path(tmp) / "speech", args.utterances, gap_s=1.0, seed=12)
    rows = []
    for name, model in (
        ("PyTorch checkpoint", checkpoint),
        ("CTranslate2 int8 export", str(export_ctranslate2(checkpoint, workspace, "int8"))),
    ):
        values = sorted(latencies(Transcriber(model, workspace, language="no"), samples))
        p90 = values[int(0.9 * (len(values) - 1))]
        rows.append(f"| {name} | {len(values)} | {statistics.median(values):.2f} | {p90:.2f} | {values[-1]:.2f} |")
    body = f"""## Live latency (`bench/live_latency.py`)

{args.utterances} espeak-ng utterances pushed in real time through `LiveSession` (the live page's code), trained
demo checkpoint, CPU. Seconds from the end of speech to the final text; {SILENCE_END_S} s of that is the detector
waiting for silence before it ends the utterance.

| model | utterances | median | p90 | max |
|---|---:|---:|---:|---:|
{chr(10).join(rows)}"""
    write_section("live", body)
    print(body)


if __name__ == "__main__":
    main()
