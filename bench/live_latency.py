"""Live latency with whisper-base: end of an utterance → final text, through the LiveSession the live page uses.

espeak-ng sentences with pauses are pushed in 20 ms chunks at real-time pace (as WebRTC delivers them) into a
LiveSession over the installed whisper-base on CTranslate2 int8 (the Transcribe page's default). Latency is
measured from the moment the voice stopped, so it includes the detector's SILENCE_END_S of waiting for quiet and
any partial transcription still running when the utterance ended. Goal: median ≤ 1.0 s on 2 CPU cores.

    python bench/live_latency.py [--utterances 40]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from common import recording, sentences

from bench.report import write_section
from core.audio import FRAME, SAMPLE_RATE
from core.speech import SILENCE_END_S, LiveSession, Transcriber
from core.workspace import Workspace

GOAL_S = 1.0


def latencies(transcriber: Transcriber, samples) -> list[float]:
    session = LiveSession(transcriber.text, max_utterance_s=transcriber.window / SAMPLE_RATE)
    started = time.monotonic()
    for i in range(0, len(samples), FRAME):
        session.push(samples[i : i + FRAME])
        time.sleep(max(0.0, started + (i + FRAME) / SAMPLE_RATE - time.monotonic()))  # real-time pace
    session.flush()
    session.wait_idle(120)
    values = [u.latency_s for u in session.snapshot().utterances]
    session.close()
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--utterances", type=int, default=40, help="in all: half English, half Norwegian")
    parser.add_argument("--home", help="workspace (default $STUDIO_HOME or ./workspace)")
    args = parser.parse_args()
    workspace = Workspace.open(args.home)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for language, code in (("en", "en"), ("nb", "no")):
            clips = sentences(Path(tmp) / language, language, args.utterances // 2, seed=31)
            samples, _ = recording(clips, gap_s=1.5)
            transcriber = Transcriber("whisper-base", workspace, language=code)
            transcriber.text(samples[: 3 * SAMPLE_RATE])  # warm-up
            values = sorted(latencies(transcriber, samples))
            p90 = values[int(0.9 * (len(values) - 1))]
            median = statistics.median(values)
            rows.append(
                f"| whisper-base, CTranslate2 int8, {language} | {len(values)} | {median:.2f} | {p90:.2f} | "
                f"{values[-1]:.2f} | {'met' if median <= GOAL_S else 'missed'} |"
            )
    body = f"""## Live latency with whisper-base (`bench/live_latency.py`)

espeak-ng sentences with 1.5 s pauses pushed in 20 ms chunks at real-time pace through `LiveSession` (the live
page's code) into the installed whisper-base on CTranslate2 int8, 2 CPU cores. Seconds from the end of speech to the
final text; {SILENCE_END_S} s of that is the detector waiting for silence. Goal: median ≤ {GOAL_S} s.

| model | utterances | median | p90 | max | goal |
|---|---:|---:|---:|---:|---|
{chr(10).join(rows)}"""
    write_section("live", body)
    print(body)


if __name__ == "__main__":
    main()
