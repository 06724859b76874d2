"""`serve` under load against the engine's own limit, its streaming answer, and a soak (issue 33).

The server runs as a user starts it (`python -m core serve --model whisper-base`, its own process on 127.0.0.1,
every request's windows batched on one engine loop). The clips: espeak-ng sentences packed into clips of 4–6 s
(lengths drawn evenly), half English, half Norwegian, each sent with its language. Three sides do the same clips,
in alternating order, REPEATS times:
- **serve**: N clients in threads, released together by a barrier, each sending one clip through the official
  `openai` client (`audio.transcriptions.create`), the server's own decoding policy (beam 5, temperature fallback);
- **faster-whisper one by one**: `WhisperModel.transcribe(beam_size=5)` on the same CTranslate2 file, clip after
  clip (what a server that decodes each request alone does);
- **one CTranslate2 generate**: every clip's window in one `generate` call at beam 5 (no fallback, no HTTP): the
  engine's limit on this machine.
Then the streaming answer (`stream=true`) of a 60 s recording: time to its first `transcript.text.delta` and to
`transcript.text.done`, beside the plain answer's time; and a soak: mixed requests (short clips, a 60 s file,
streams, clients that abort after a second) at a steady rate, the server's memory sampled.

    python bench/serve_load.py [--clients 20,50] [--repeats 3] [--soak-s 300]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import socket
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
from common import ROOT, recording, sentences, spread

from bench.report import write_section
from core.audio import SAMPLE_RATE, load_audio
from core.text.wer import normalize_for_wer

CLIP_S = (4.0, 6.0)
LANGUAGES = ("en", "nb")
WHISPER_CODES = {"en": "en", "nb": "no"}
GOAL_RATIO = 1.1
LIMIT = "one CTranslate2 generate, all windows, beam 5"


def clips(folder: Path, n: int) -> list[tuple[Path, str, str]]:
    """`n` wav clips of 4–6 s, languages alternating: whole sentences packed while they fit (0.3 s apart), then
    silence; (path, language, script)."""
    rng = random.Random(41)
    pools = {lang: iter(sentences(folder / lang, lang, 3 * n, seed=41)) for lang in LANGUAGES}
    made, gap = [], np.zeros(int(0.3 * SAMPLE_RATE), np.float32)
    for i in range(n):
        language = LANGUAGES[i % 2]
        length = int(rng.uniform(*CLIP_S) * SAMPLE_RATE)
        samples, script = np.zeros(0, np.float32), []
        for audio, text in pools[language]:
            if len(samples) + len(gap) + len(audio) > length:
                if script:
                    break
                continue  # a sentence longer than the clip alone: never cut
            samples, script = np.concatenate([samples, gap, audio]) if script else audio, script + [text]
        path = folder / f"clip-{i:02d}.wav"
        sf.write(path, np.pad(samples, (0, length - len(samples))), SAMPLE_RATE)
        made.append((path, language, " ".join(script)))
    return made


def start_server(home: str, queue: int) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "core", "serve", "--model", "whisper-base", "--port", "0", "--queue", str(queue)]
    child = subprocess.Popen(
        [*command, "--home", home], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )  # its access log (stdout) is not this report's
    for line in child.stderr:
        if "serving whisper-base at " in line:
            threading.Thread(target=lambda: [None for _ in child.stderr], daemon=True).start()  # keep the pipe read
            return child, line.split(" at ")[1].split()[0]
    raise SystemExit(f"the server did not start (exit {child.wait()})")


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key="none", max_retries=0, timeout=900)


def burst(url: str, work: list[tuple[Path, str, str]], **options) -> tuple[list[str], list[float]]:
    """All clients at once (`options` added to each request): (texts, latencies); a failure is raised."""
    gate, out = threading.Barrier(len(work)), [None] * len(work)

    def one(k: int, path: Path, language: str) -> None:
        gate.wait()
        started = time.perf_counter()
        try:
            with path.open("rb") as audio:
                create = client(url).audio.transcriptions.create
                text = create(model="whisper-1", file=audio, language=language, **options).text
            out[k] = (text, time.perf_counter() - started)
        except openai.APIError as err:
            out[k] = err

    threads = [threading.Thread(target=one, args=(k, p, lang)) for k, (p, lang, _) in enumerate(work)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    failed = [r for r in out if not isinstance(r, tuple)]
    if failed:
        raise SystemExit(f"{len(failed)} requests failed: {failed[0]}")
    return [r[0] for r in out], [r[1] for r in out]


def engine_sides(home: str):
    """(faster-whisper one by one, one CTranslate2 generate over all windows), each a function of the clips."""
    import ctranslate2
    from faster_whisper import WhisperModel

    from core.models import resolve_model
    from core.speech import Transcriber
    from core.workspace import Workspace

    ct2 = str(Path(resolve_model("whisper-base", Workspace.open(home))).parent / "whisper-base-ct2")
    fw = WhisperModel(ct2, device="cpu", compute_type="int8", cpu_threads=os.cpu_count() or 2)
    ours = Transcriber("whisper-base", Workspace.open(home))
    tokenizer = ours.processor.tokenizer

    def one_by_one(work):
        texts = []
        for path, language, _ in work:
            segments, _ = fw.transcribe(str(path), language=WHISPER_CODES[language], beam_size=5)
            texts.append(" ".join(s.text.strip() for s in segments))
        return texts

    def one_generate(work):
        features = ours.features([load_audio(path) for path, _, _ in work])
        prompts = [
            tokenizer.convert_tokens_to_ids(
                ["<|startoftranscript|>", f"<|{WHISPER_CODES[lang]}|>", "<|transcribe|>", "<|notimestamps|>"]
            )
            for _, lang, _ in work
        ]
        storage = ctranslate2.StorageView.from_array(np.ascontiguousarray(features, np.float32))
        results = ours.model.engine.generate(storage, prompts, beam_size=5, max_length=224)
        return [tokenizer.decode(r.sequences_ids[0], skip_special_tokens=True).strip() for r in results]

    return one_by_one, one_generate


def wer_interval(scripts: list[str], texts: list[str], draws: int = 1000) -> str:
    """Corpus WER and its 95% bootstrap interval over clips, as 'W% (lo–hi%)'."""
    import jiwer

    counts = []
    for reference, hypothesis in zip(scripts, texts):
        ref, hyp = normalize_for_wer(reference), normalize_for_wer(hypothesis)
        words = jiwer.process_words(ref, hyp or "")
        counts.append((words.substitutions + words.deletions + words.insertions, len(ref.split())))
    errors, total = np.array(counts, float).T
    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(counts), (draws, len(counts)))
    sampled = errors[picks].sum(1) / total[picks].sum(1)
    low, high = np.percentile(sampled, [2.5, 97.5])
    return f"{errors.sum() / total.sum():.1%} ({low:.1%}–{high:.1%})"


def measure_load(url: str, work, repeats: int, fw_side, limit_side) -> tuple[list[str], dict]:
    """The three sides on `work`, alternating: (table rows, {side: median wall})."""
    sides = {
        f"serve, {len(work)} concurrent (openai client)": lambda: burst(url, work),
        f"serve, {len(work)} concurrent, temperature 0 (one pass, as the limit)": lambda: burst(
            url, work, temperature=0
        ),
        "faster-whisper one by one, beam 5": lambda: (fw_side(work), []),
        LIMIT: lambda: (limit_side(work), []),
    }
    walls: dict[str, list[float]] = {name: [] for name in sides}
    latencies: dict[str, list[float]] = {name: [] for name in sides}
    texts = {}
    for round_ in range(repeats):
        for name in list(sides) if round_ % 2 == 0 else list(sides)[::-1]:
            started = time.perf_counter()
            said, times = sides[name]()
            walls[name].append(time.perf_counter() - started)
            latencies[name] += times
            texts[name] = said
    scripts = [script for _, _, script in work]
    limit = statistics.median(walls[LIMIT])
    rows = []
    for name in sides:
        ratio = statistics.median(walls[name]) / limit
        mine = latencies[name]
        pct = f"{np.percentile(mine, 50):.1f} / {np.percentile(mine, 95):.1f}" if mine else "—"
        rows.append(
            f"| {name} | {spread(walls[name], 1)} | {ratio:.2f}× | {pct} | {wer_interval(scripts, texts[name])} |"
        )
    return rows, {name: statistics.median(w) for name, w in walls.items()}


def measure_stream(url: str, path: Path, language: str, repeats: int) -> str:
    """First delta and done of a streamed answer beside the plain answer, alternating."""
    first, done, plain = [], [], []
    for round_ in range(repeats):
        for kind in ("stream", "plain") if round_ % 2 == 0 else ("plain", "stream"):
            started = time.perf_counter()
            with path.open("rb") as audio:
                if kind == "plain":
                    client(url).audio.transcriptions.create(model="whisper-1", file=audio, language=language)
                    plain.append(time.perf_counter() - started)
                    continue
                events = client(url).audio.transcriptions.create(
                    model="whisper-1", file=audio, language=language, stream=True
                )
                for event in events:
                    if event.type == "transcript.text.delta" and len(first) < len(done) + 1:
                        first.append(time.perf_counter() - started)
                done.append(time.perf_counter() - started)
    return f"| {spread(first, 2)} | {spread(done, 2)} | {spread(plain, 2)} |"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def soak(url: str, pid: int, work, long: Path, seconds: float, every_s: float) -> str:
    """Mixed requests at a steady rate for `seconds`: (table row) with what was answered and the memory."""
    kinds = ["short"] * 5 + ["long", "stream", "stream", "aborted", "aborted"]
    rng, outcomes, threads, memory = random.Random(7), [], [], [(0.0, rss_mb(pid))]
    port = int(url.rsplit(":", 1)[1].split("/")[0])

    def one(kind: str) -> None:
        try:
            if kind == "aborted":  # sends a long file, then goes away a second later
                with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
                    data, boundary = long.read_bytes(), "soak-boundary"
                    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="long.wav"\r\n\r\n'
                            ).encode() + data + f"\r\n--{boundary}--\r\n".encode()  # fmt: skip
                    sock.sendall(
                        f"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
                        f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n".encode()
                        + body
                    )
                    time.sleep(1)
                outcomes.append((kind, "aborted"))
                return
            path, language, _ = rng.choice(work) if kind == "short" else (long, "en", "")
            with path.open("rb") as audio:
                answer = client(url).audio.transcriptions.create(
                    model="whisper-1", file=audio, language=language, stream=kind == "stream"
                )
                if kind == "stream":
                    assert list(answer)[-1].type == "transcript.text.done"
            outcomes.append((kind, "ok"))
        except (openai.APIError, AssertionError, OSError) as err:
            outcomes.append((kind, f"failed: {type(err).__name__}"))

    started = time.monotonic()
    while time.monotonic() - started < seconds:
        kind = rng.choice(kinds)
        thread = threading.Thread(target=one, args=(kind,))
        thread.start()
        threads.append(thread)
        time.sleep(every_s)
        memory.append((time.monotonic() - started, rss_mb(pid)))
    for thread in threads:
        thread.join()
    memory.append((time.monotonic() - started, rss_mb(pid)))
    lost = [o for o in outcomes if o[1].startswith("failed")]
    per_kind = ", ".join(f"{k} {sum(o[0] == k for o in outcomes)}" for k in dict.fromkeys(kinds))
    warm = [m for t, m in memory if t >= seconds / 5]
    # the most the server held up to the end of each minute: a leak keeps climbing, an allocator's high-water mark
    # levels off once the largest mix of requests has been in flight together
    minutes = [max(m for t, m in memory if t <= minute * 60) for minute in range(1, math.ceil(seconds / 60) + 1)]
    return (
        (
            f"| {seconds / 60:.1f} min | {len(outcomes)} ({per_kind}) | {len(lost)} | {memory[0][1]:.0f} | "
            f"{warm[0]:.0f} | {max(m for _, m in memory):.0f} | {memory[-1][1]:.0f} |"
        ),
        lost,
        minutes,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", default="20,50", help="comma-separated burst sizes")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--soak-s", type=float, default=300, help="soak length, seconds (0: none)")
    parser.add_argument("--soak-every-s", type=float, default=4.0, help="one request started every this many seconds")
    parser.add_argument("--soak-only", action="store_true", help="only the soak (its section alone is rewritten)")
    parser.add_argument("--home", help="workspace (default $STUDIO_HOME or ./workspace)")
    args = parser.parse_args()
    home = str(Path(args.home or os.environ.get("STUDIO_HOME") or ROOT / "workspace").resolve())
    counts = [int(c) for c in args.clients.split(",")]
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        # 1. the clips, a 60 s recording, the engine-side baselines, the server
        work = clips(Path(tmp), max(counts))
        long, _ = recording(sentences(Path(tmp) / "long", "en", 20, seed=5), gap_s=0.8)
        sf.write(Path(tmp) / "long.wav", long[: 60 * SAMPLE_RATE], SAMPLE_RATE)
        fw_side, limit_side = engine_sides(home) if not args.soak_only else (None, None)
        child, url = start_server(home, queue=max(counts) + 8)
        try:
            burst(url, work[:2])  # warm-up, not timed
            if args.soak_only:
                soaked = soak(url, child.pid, work, Path(tmp) / "long.wav", args.soak_s, args.soak_every_s)
                loads.append(os.getloadavg()[0])
                write_section("serve-soak", soak_report(args, *soaked, loads))
                return
            fw_side(work[:2]), limit_side(work[:2])
            # 2. the bursts beside the baselines
            rows, goals = [], []
            for n in counts:
                measured, walls = measure_load(url, work[:n], args.repeats, fw_side, limit_side)
                rows += measured
                ratio = walls[f"serve, {n} concurrent (openai client)"] / walls[LIMIT]
                verdict = "met" if ratio <= GOAL_RATIO else "missed"
                one_pass = walls[f"serve, {n} concurrent, temperature 0 (one pass, as the limit)"] / walls[LIMIT]
                faster = walls["faster-whisper one by one, beam 5"] / walls[f"serve, {n} concurrent (openai client)"]
                goals.append(
                    f"{n} concurrent: serve {ratio:.2f}× the one-generate limit — **{verdict}**; asked for the "
                    f"limit's one pass (temperature 0), {one_pass:.2f}×: what is over the limit is the temperature "
                    f"fallback's extra decodes, not HTTP or batching; {faster:.2f}× faster than one by one"
                )
                loads.append(os.getloadavg()[0])
            # 3. the streaming answer, 4. the soak
            stream_row = measure_stream(url, Path(tmp) / "long.wav", "en", args.repeats)
            loads.append(os.getloadavg()[0])
            if args.soak_s:
                soaked = soak(url, child.pid, work, Path(tmp) / "long.wav", args.soak_s, args.soak_every_s)
                loads.append(os.getloadavg()[0])
        finally:
            child.terminate()
            child.wait(120)
    write_section("serve", report(args, counts, rows, goals, stream_row, loads))
    if args.soak_s:
        write_section("serve-soak", soak_report(args, *soaked, loads))


def report(args, counts, rows, goals, stream_row, loads) -> str:
    return f"""## Serving under load (`bench/serve_load.py`)

`python -m core serve --model whisper-base` (the installed whisper-base, CTranslate2 int8, its own process on
127.0.0.1; every request's windows batched on one engine loop, up to 16 windows a call) answering
{" and ".join(map(str, counts))} concurrent clips of 4–6 s (espeak-ng, half English, half Norwegian, each with its
language) from the official
`openai` client, beside faster-whisper doing the same clips one by one at beam 5 (what a server that decodes each
request alone does) and one CTranslate2 `generate` over all the clips' windows at beam 5 (the engine's limit: no
fallback, no HTTP); the server is also asked with `temperature=0` (one pass at beam 5, the limit's work plus
HTTP, the voice detector and batching across requests). Wall seconds, median (range) of {args.repeats} rounds in
alternating order; *× limit* is the median
over the one-generate median; p50/p95 are the server's per-request latencies pooled over rounds; WER with its 95%
bootstrap interval over clips. 1-minute load average {min(loads):.1f}–{max(loads):.1f} during the run on 2 cores
({quiet(loads)}).

| side | wall, s | × limit | p50 / p95, s | WER (95% interval) |
|---|---:|---:|---:|---:|
{chr(10).join(rows)}

Goal on 2 CPU cores, wall ≤ {GOAL_RATIO}× the one-generate limit with WER within its interval:
{chr(10).join("- " + g for g in goals)}
- On a GPU, ≥ 3× faster than one by one: **not measured** — no GPU was lent to this task.

**Streaming** (`stream=true`) of a 60 s English recording: seconds from the request to the first
`transcript.text.delta` and to `transcript.text.done`, beside the plain answer of the same file (median (range) of
{args.repeats}, alternating).

| first delta | done | plain answer |
|---:|---:|---:|
{stream_row}"""


def quiet(loads: list[float]) -> str:
    """What the load average says of the figures: above 2 on 2 cores, other work took CPU time from them."""
    if max(loads) > 2:
        return "above 2 at times: other work shared the machine, so these figures are under load"
    return "at most 2: the cores were this benchmark's"


def soak_report(args, row, lost, minutes, loads) -> str:
    lost_line = "nothing lost" if not lost else f"{len(lost)} lost: {sorted(set(o[1] for o in lost))}"
    short = "" if args.soak_s >= 600 else " (the issue asked for 10; this run is shorter, as stated)"
    return f"""## Serving soak (`bench/serve_load.py --soak-s {args.soak_s:.0f}`)

A steady rate of mixed requests against the same server, one started every {args.soak_every_s:g} s for
{args.soak_s / 60:.1f} minutes{short}: short clips (json), a 60 s
file (json), the 60 s file streamed (`stream=true`, read to `transcript.text.done`), and clients that send the 60 s
file and go away a second later. *Lost* is any request that was not aborted and did not get its full answer. The
server's resident memory (MB): at start, after the first fifth (warm), its peak, and at the end. Load average
{min(loads):.1f}–{max(loads):.1f} on 2 cores ({quiet(loads)}).

| length | requests | lost | RSS start | RSS warm | RSS peak | RSS end |
|---|---|---:|---:|---:|---:|---:|
{row}

{lost_line}. The most resident memory up to the end of each minute (MB): {", ".join(f"{m:.0f}" for m in minutes)}."""


if __name__ == "__main__":
    main()
