"""Dynamic batching (core/speech/batching.py): the windows of many requests decoded together give each request what
it gets alone, on both engines (transformers: the demo model; CTranslate2: the demo model exported), with beam
search and the temperature fallback (sampling) per window; a cancelled job frees its place in the queue; the
command line's transcribe of many files goes through the same loop. Real espeak-ng speech, real models.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers import make_audio, run_cli

from core.audio import SAMPLE_RATE, load_audio
from core.models.export import export_ctranslate2
from core.speech import Transcriber
from core.speech.batching import BatchedEngine, Cancelled, EngineLoop, Job, Work
from core.speech.decoding import DecodingOptions

# beams, and a fallback the untrained toy always needs (it never passes the thresholds): sampling, seeded per window
POLICY = DecodingOptions(beam_size=2, temperatures=(0.0, 0.6), best_of=1)
PHRASES = ["hei", "god morgen alle sammen", "takk for maten"]


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    """Three phrases of different lengths, and one recording of several windows (the phrases 0.8 s apart)."""
    folder = tmp_path_factory.mktemp("batching")
    paths = [make_audio(folder / f"clip-{i}.wav", text) for i, text in enumerate(PHRASES)]
    gap = np.zeros(int(0.8 * SAMPLE_RATE), np.float32)
    long = np.concatenate([part for p in paths for part in (load_audio(p), gap)])
    sf.write(folder / "long.wav", long, SAMPLE_RATE)
    return [*paths, folder / "long.wav"]


@pytest.fixture(scope="module")
def demo_ct2(session_workspace, tmp_path_factory) -> str:
    return str(export_ctranslate2("demo", session_workspace, "float32", out=tmp_path_factory.mktemp("ct2") / "demo"))


def _transcribe_together(transcriber: Transcriber, clips: list[Path], loop: EngineLoop) -> list:
    """Every clip at once, each on its own thread through `loop`, released together."""
    gate, out = threading.Barrier(len(clips)), [None] * len(clips)

    def one(k: int) -> None:
        gate.wait()
        out[k] = transcriber.using(BatchedEngine(loop)).transcribe_file(clips[k], options=POLICY)

    threads = [threading.Thread(target=one, args=(k,)) for k in range(len(clips))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    return out


def _decoded(transcript) -> list[tuple]:
    return [(s.start, s.end, s.text, s.temperature) for s in transcript.segments]


@pytest.mark.parametrize("engine", ["transformers", "ctranslate2"])
@pytest.mark.slow  # over 4 s: out of the fast lane
def test_windows_of_many_requests_decode_together_as_they_do_alone(engine, clips, session_workspace, request):
    model = "demo" if engine == "transformers" else request.getfixturevalue("demo_ct2")
    transcriber = Transcriber(model, session_workspace, language="no")
    assert transcriber.engine == engine
    alone = [transcriber.transcribe_file(clip, options=POLICY) for clip in clips]
    sizes: list[int] = []
    loop = EngineLoop(transcriber.backend, batch=16, wait_s=0.05, observe=sizes.append)
    try:
        together = _transcribe_together(transcriber, clips, loop)
    finally:
        loop.close()
    assert max(sizes) > 2, sizes  # windows of several requests really shared a call
    assert len(alone[-1].segments) >= 2  # the long recording has several windows of its own
    for one, batched in zip(alone, together):
        assert _decoded(batched) == _decoded(one)  # texts, times and the temperature kept: the same
        for a, b in zip(one.segments, batched.segments):
            assert (b.avg_logprob, b.no_speech_prob) == (pytest.approx(a.avg_logprob, abs=1e-4), pytest.approx(
                a.no_speech_prob, abs=1e-4
            ))  # fmt: skip
    assert any(s.temperature > 0 for t in alone for s in t.segments)  # the fallback (sampling) was exercised


def test_a_cancelled_job_gives_up_its_place_and_its_thread_goes_on(session_workspace):
    gate = threading.Event()

    class Slow:  # an engine whose encode waits for the test: the loop is busy with the first batch
        def encode(self, features):
            gate.wait(60)
            return np.asarray(features)

    loop = EngineLoop(Slow(), batch=1, wait_s=0)
    first, second = Job(), Job()
    results: dict[str, object] = {}

    def run(name: str, job: Job) -> None:
        try:
            results[name] = loop.submit(Work("encode", np.zeros((1, 4), np.float32), 1, job=job))
        except Cancelled as err:
            results[name] = err

    threads = [threading.Thread(target=run, args=(n, j)) for n, j in (("first", first), ("second", second))]
    threads[0].start()
    while not loop._running:  # the first batch is in hand
        threading.Event().wait(0.01)
    threads[1].start()
    while not loop.depth():  # the second waits
        threading.Event().wait(0.01)
    second.cancel("the client disconnected")
    threads[1].join(10)
    assert isinstance(results["second"], Cancelled) and loop.depth() == 0  # its place freed, its thread on its way
    first.cancel("gone too")
    threads[0].join(10)
    assert isinstance(results["first"], Cancelled)  # a running batch's answer for it is thrown away
    gate.set()
    loop.close()
    with pytest.raises(Cancelled):
        loop.submit(Work("encode", np.zeros((1, 4), np.float32), 1))  # a closed loop takes nothing


def test_windows_of_another_shape_are_encoded_in_a_call_of_their_own():
    """A context fitted to an utterance (8 s) and a full window (30 s) cannot share a call: each shape gets one."""
    calls: list[tuple] = []

    class Shapes:  # an engine that notes the shape of each encode call and answers each window with its own sum
        def encode(self, features):
            calls.append(features.shape)
            return features.sum(axis=(1, 2))

    loop = EngineLoop(Shapes(), batch=3, wait_s=30)  # the batch closes when all three have arrived
    parts = [np.full((1, 2, frames), k + 1, np.float32) for k, frames in enumerate((800, 3000, 800))]
    out: list[object] = [None] * 3

    def run(k: int) -> None:
        out[k] = BatchedEngine(loop).encode(parts[k])

    threads = [threading.Thread(target=run, args=(k,)) for k in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    loop.close()
    assert sorted(calls) == [(1, 2, 3000), (2, 2, 800)]  # one call per shape, not one that failed and three alone
    assert [float(o[0]) for o in out] == [2 * 800.0, 2 * 2 * 3000.0, 3 * 2 * 800.0]  # each request its own answer


@pytest.mark.slow  # over 4 s: out of the fast lane
def test_the_command_line_transcribes_many_files_through_one_loop_in_order(clips, session_workspace, tmp_path):
    transcriber = Transcriber("demo", session_workspace, language="no")
    expected = [
        transcriber.transcribe_file(c, options=DecodingOptions(beam_size=1, temperatures=(0.0,))) for c in clips
    ]
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really")
    files = [str(c) for c in clips[:2]] + [str(broken)] + [str(c) for c in clips[2:]]
    result = run_cli(
        "transcribe", *files, "--model", "demo", "--language", "nb", "--beam-size", "1", "--temperatures", "0",
        "--format", "txt", "--out", str(tmp_path / "out"), home=session_workspace.home,
    )  # fmt: skip
    assert result.returncode == 2 and "broken.wav" in result.stderr and "1 of 5 files" in result.stderr
    written = [line for line in result.stdout.splitlines() if line.endswith(".txt")]
    assert [Path(line).stem for line in written] == [c.stem for c in clips]  # in the order given, the bad one left out
    for line, transcript in zip(written, expected):  # below --out, mirroring the inputs' folders
        assert Path(line).is_relative_to(tmp_path / "out") and Path(line).read_text() == transcript.text + "\n"
