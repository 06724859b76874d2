"""`serve` under load: 20 concurrent requests of 5 s clips against whisper-base, through the official client.

The server runs as a user starts it (`python -m core serve --model whisper-base`, its own process, 127.0.0.1) with
each `--workers` setting in turn and a queue long enough for the burst. 20 clients in threads, released together by a
barrier, each send one 5 s espeak-ng clip (whole English sentences, padded with silence to 5.0 s) with
`client.audio.transcriptions.create(model="whisper-1", language="en")`: the server's own decoding policy, as an app
calls it. Latency is from a client's send to its answer. Each burst runs BURSTS times after one warm-up request;
the table pools their latencies (p50, p95, max) and gives the burst's wall time (median and range), the idle
server's single-request latency beside it, and the WER of the answers against the scripts (all answered, and right).

    python bench/serve_load.py [--workers 1,2] [--clients 20]
"""

from __future__ import annotations

import argparse
import math
import os
import select
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import openai
import soundfile as sf
from common import ROOT, sentences, spread

from bench.report import write_section
from core.audio import SAMPLE_RATE
from core.text import error_rates

CLIP_S = 5.0
BURSTS = 3
IDLE_REQUESTS = 3


def clips(folder: Path, n: int) -> list[tuple[Path, str]]:
    """`n` wav files of exactly CLIP_S seconds: whole espeak-ng sentences packed while they fit (0.3 s apart),
    then silence; (path, script)."""
    pool = iter(sentences(folder / "synth", "en", 4 * n, seed=41))
    length, gap = int(CLIP_S * SAMPLE_RATE), np.zeros(int(0.3 * SAMPLE_RATE), np.float32)
    made = []
    for i in range(n):
        samples, script = np.zeros(0, np.float32), []
        for audio, text in pool:
            if len(samples) + len(gap) + len(audio) > length:
                if script:
                    break
                continue  # a sentence longer than a clip alone: never cut
            samples, script = np.concatenate([samples, gap, audio]) if script else audio, script + [text]
        path = folder / f"clip-{i:02d}.wav"
        sf.write(path, np.pad(samples, (0, length - len(samples))), SAMPLE_RATE)
        made.append((path, " ".join(script)))
    return made


def start_server(home: str, workers: int, queue: int) -> tuple[subprocess.Popen, str]:
    """`python -m core serve` on a free port; (process, base URL) once it says it serves."""
    command = [sys.executable, "-m", "core", "serve", "--model", "whisper-base", "--port", "0"]
    command += ["--workers", str(workers), "--queue", str(queue), "--home", home]
    child = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True, env={**os.environ})
    while True:
        ready, _, _ = select.select([child.stderr], [], [], 600)
        line = child.stderr.readline() if ready else ""
        if not line:
            raise SystemExit(f"the server did not start (exit {child.poll()})")
        if "serving whisper-base at " in line:
            # its access log goes on: read it away, or a full pipe would stop the server mid-burst
            threading.Thread(target=child.stderr.read, daemon=True).start()
            return child, line.split(" at ")[1].split()[0]


def transcribe(url: str, path: Path) -> tuple[float, str]:
    client = openai.OpenAI(base_url=url, api_key="none", max_retries=0, timeout=600)
    started = time.perf_counter()
    with path.open("rb") as audio:
        text = client.audio.transcriptions.create(model="whisper-1", file=audio, language="en").text
    return time.perf_counter() - started, text


def burst(url: str, work: list[tuple[Path, str]]) -> tuple[float, list[float], list[str], int]:
    """All clients at once: (wall seconds, latencies, texts, failures)."""
    gate = threading.Barrier(len(work))
    results: list = [None] * len(work)

    def one(i: int, path: Path) -> None:
        gate.wait()
        try:
            results[i] = transcribe(url, path)
        except openai.APIError as err:
            results[i] = err

    threads = [threading.Thread(target=one, args=(i, p)) for i, (p, _) in enumerate(work)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    answered = [r for r in results if isinstance(r, tuple)]
    return wall, [r[0] for r in answered], [r[1] for r in answered], len(results) - len(answered)


def percentile(values: list[float], share: float) -> float:
    """Nearest rank: the smallest value at or above `share` of them."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def measure(home: str, workers: int, work: list[tuple[Path, str]]) -> str:
    child, url = start_server(home, workers, queue=len(work))
    try:
        transcribe(url, work[0][0])  # warm-up, not timed
        idle = [transcribe(url, path)[0] for path, _ in work[:IDLE_REQUESTS]]
        walls, latencies, failures, texts = [], [], 0, []
        for _ in range(BURSTS):
            wall, times, said, failed = burst(url, work)
            walls.append(wall)
            latencies += times
            failures += failed
            texts = said if not failed else texts
    finally:
        child.terminate()
        child.communicate(timeout=120)
    answered = BURSTS * len(work) - failures
    wer = error_rates([s for _, s in work], texts)["wer"] if texts else math.nan
    return (
        f"| {workers} | {answered}/{BURSTS * len(work)} | {statistics.median(idle):.2f} | "
        f"{percentile(latencies, 0.5):.2f} | {percentile(latencies, 0.95):.2f} | {max(latencies):.2f} | "
        f"{spread(walls, 1)} | {wer:.1%} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", default="1,2", help="comma-separated --workers settings to measure")
    parser.add_argument("--clients", type=int, default=20, help="concurrent requests in a burst")
    parser.add_argument("--home", help="workspace (default $STUDIO_HOME or ./workspace)")
    args = parser.parse_args()
    home = str(Path(args.home or os.environ.get("STUDIO_HOME") or ROOT / "workspace").resolve())
    with tempfile.TemporaryDirectory() as tmp:
        work = clips(Path(tmp), args.clients)
        load_before = os.getloadavg()[0]
        rows = [measure(home, int(w), work) for w in args.workers.split(",")]
        load_after = os.getloadavg()[0]
    body = f"""## Serving under load (`bench/serve_load.py`)

`python -m core serve --model whisper-base` (the installed whisper-base, CTranslate2 int8, its own process on
127.0.0.1, the server's decoding policy, language given) answering {args.clients} concurrent requests of {CLIP_S:.0f} s
English espeak-ng clips from the official `openai` client, {BURSTS} bursts after a warm-up. Latency is seconds from
a client's send to its answer, pooled over the bursts; *idle* is one request at a time on the same server. The queue
holds the whole burst (`--queue {args.clients}`), so nothing gets a 503. The machine's 1-minute load average was
{load_before:.1f} before and {load_after:.1f} after (the server and its clients account for about 2 of it; more is
other work sharing the cores, which stretches every figure here).

| --workers | answered | idle | p50 | p95 | max | burst wall, s | WER |
|---:|---:|---:|---:|---:|---:|---:|---:|
{chr(10).join(rows)}"""
    write_section("serve", body)
    print(body)


if __name__ == "__main__":
    main()
