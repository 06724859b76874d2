"""`serve` over a real socket: the official `openai` client against uvicorn, the demo model and espeak-ng speech.

One server runs in a thread for the module (the demo model, a key, a 10 s audio limit); the overflow test starts
`python -m core serve` as a user does, taking one request at a time, and holds one request open to fill it.
"""

import json
import math
import os
import shlex
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from helpers import REPO, make_audio
from serve_helpers import KEY, client, form, read_until, refusal, start

from core.audio import SAMPLE_RATE
from core.cli import COMMANDS
from core.cli_arguments import build_parser
from core.errors import StudioError
from core.evaluation import checkpoint_choices
from core.speech import Transcriber
from core.speech.decoding import DecodingOptions
from core.speech.openai_api import parse_request, render
from core.speech.server import ServeOptions, create_app, listen, serve_command
from core.speech.transcripts import Segment, Transcript, Word, to_srt, to_txt, to_vtt
from core.training import RunFolder

GREEDY = DecodingOptions(temperatures=(0.0,))  # what temperature=0 asks for: one deterministic pass


@pytest.fixture(scope="module")
def server(session_workspace):
    url, stop = start(create_app(ServeOptions(model="demo", api_key=KEY, max_audio_s=10), session_workspace))
    yield url
    stop()


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_audio(tmp_path_factory.mktemp("serve") / "hei.wav", "hei på deg, dette er en prøve")


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # openai marks audio.translations deprecated
@pytest.mark.slow  # over 4 s: out of the fast lane
def test_the_official_client_gets_every_format_as_the_transcriber_makes_it(server, clip, session_workspace):
    reference = Transcriber("demo", session_workspace)
    expected = reference.transcribe_file(clip, name=clip.name, options=GREEDY)
    create = client(server).audio.transcriptions.create
    answer = create(model="whisper-1", file=clip.open("rb"), temperature=0)
    assert answer.text == expected.text and answer.usage.seconds == math.ceil(expected.duration)
    for response_format, writer in (("text", to_txt), ("srt", to_srt), ("vtt", to_vtt)):
        assert create(model="demo", file=clip.open("rb"), response_format=response_format, temperature=0) == writer(
            expected
        )
    verbose = create(model="whisper-1", file=clip.open("rb"), response_format="verbose_json", temperature=0)
    spoken = [s for s in expected.segments if s.text]
    assert verbose.text == expected.text and verbose.duration == pytest.approx(expected.duration, abs=1e-3)
    assert [(s.id, s.text) for s in verbose.segments] == list(enumerate(s.text for s in spoken))
    assert [(s.start, s.end) for s in verbose.segments] == [(round(s.start, 3), round(s.end, 3)) for s in spoken]
    assert verbose.words is None  # words only when asked for
    # the measures of the decoding policy, as OpenAI gives them (an app's `seg.avg_logprob < -1` needs a number)
    measured = [(s.temperature, s.avg_logprob, s.compression_ratio, s.no_speech_prob) for s in spoken]
    assert all(isinstance(value, float) for row in measured for value in row), measured
    answered = [(s.temperature, s.avg_logprob, s.compression_ratio, s.no_speech_prob) for s in verbose.segments]
    assert answered == [tuple(pytest.approx(v, abs=1e-6) for v in row) for row in measured]
    assert [s.avg_logprob < -1 for s in verbose.segments] == [s.avg_logprob < -1 for s in spoken]
    translated = reference.transcribe_file(clip, name=clip.name, task="translate", options=GREEDY)
    translation = client(server).audio.translations.create(
        model="whisper-1", file=clip.open("rb"), response_format="text", temperature=0
    )
    assert translation == to_txt(translated)


def test_verbose_json_gives_words_without_their_space_and_segments_only_when_asked():
    words = [Word(0.5, 0.9, " hei", 0.9), Word(1.0, 1.4, " du", 0.7)]
    transcript = Transcript([Segment(0.5, 1.4, "hei du", words), Segment(2.0, 2.5, "")], "no", 0.8, 3.2, "a.wav")
    request = parse_request({"response_format": "verbose_json"}, ["word"], b"RIFF", "a.wav", "translate")
    assert request.decoding_options().word_timestamps and request.task == "translate"
    body, media_type = render(transcript, request, lambda text: [len(text)])
    assert media_type == "application/json" and "segments" not in body  # word granularity alone: no segments
    assert body["words"] == [
        {"word": "hei", "start": 0.5, "end": 0.9, "probability": 0.9},
        {"word": "du", "start": 1.0, "end": 1.4, "probability": 0.7},
    ]
    assert (body["task"], body["language"], body["duration"], body["usage"]["seconds"]) == (
        "translate",
        "norwegian bokmål",
        3.2,
        4,
    )
    both = parse_request({"response_format": "verbose_json"}, ["segment", "word"], b"RIFF", "a.wav", "transcribe")
    segments = render(transcript, both, lambda text: [len(text)])[0]["segments"]
    assert [(s["id"], s["text"], s["tokens"], s["seek"]) for s in segments] == [
        (0, "hei du", [6], 50)
    ]  # the empty one left out


def test_bad_input_gets_a_400_in_openai_error_shape(server, clip, tmp_path):
    create = client(server).audio.transcriptions.create
    status, error = refusal(lambda: create(model="whisper-1", file=("notes.wav", b"these are my notes, not audio")))
    assert status == 400 and (error["param"], error["code"]) == ("file", "invalid_file")
    assert "notes.wav" in error["message"] and "not audio" in error["message"]
    long_clip = tmp_path / "long.wav"
    sf.write(long_clip, np.zeros(12 * SAMPLE_RATE, np.float32), SAMPLE_RATE)  # 12 s, over the fixture's 10 s
    status, error = refusal(lambda: create(model="whisper-1", file=long_clip.open("rb")))
    assert status == 400 and error["code"] == "audio_too_long" and "--max-audio-s" in error["message"]
    status, error = refusal(lambda: create(model="nb-best", file=clip.open("rb")))
    assert status == 400 and (error["param"], error["code"]) == ("model", "model_not_found")
    assert "demo" in error["message"] and "whisper-1" in error["message"]  # the choices
    status, error = refusal(lambda: create(model="whisper-1", file=clip.open("rb"), response_format="diarized_json"))
    assert status == 400 and error["param"] == "response_format" and "verbose_json" in error["message"]


def test_a_missing_or_wrong_key_is_a_401_that_never_quotes_it(server):
    wrong = "sk-not-the-right-key"
    status, error = refusal(lambda: client(server, wrong).models.list())
    assert status == 401 and error["code"] == "invalid_api_key" and wrong not in error["message"]
    assert KEY not in error["message"]
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{server}/models", timeout=60)  # no Authorization header at all
    error = json.loads(caught.value.read())["error"]
    assert caught.value.code == 401 and error["code"] == "no_key" and "Bearer" in error["message"]
    assert [m.id for m in client(server).models.list()][0] == "demo"  # with the key: the served model first


def test_models_lists_each_checkpoint_of_a_run_and_serves_it(populated, clip):
    url, stop = start(create_app(ServeOptions(model="demo"), populated, lambda: checkpoint_choices(populated)))
    try:
        run = RunFolder.of(populated, "page-run")
        ids = [m.id for m in client(url).models.list()]
        wanted = [f"page-run/{c.name}" for c in run.checkpoints()]
        assert wanted and set(wanted) <= set(ids) and {"demo", "whisper-base"} <= set(ids), ids
        best = f"page-run/{run.best_checkpoint_name()}"
        assert client(url).models.retrieve(best).id == best
        answer = client(url).audio.transcriptions.create(model=best, file=clip.open("rb"), temperature=0)
        expected = Transcriber(str(run.path / run.best_checkpoint_name()), populated)
        assert answer.text == expected.transcribe_file(clip, name=clip.name, options=GREEDY).text
    finally:
        stop()


@pytest.mark.slow  # over 4 s: out of the fast lane
def test_the_cli_serves_with_the_key_from_the_environment_and_a_full_queue_is_a_503(tmp_path, clip):
    command = [sys.executable, "-m", "core", "serve", "--model", "demo", "--port", "0", "--workers", "1"]
    child = subprocess.Popen(
        [*command, "--queue", "1", "--home", str(tmp_path / "ws")],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "STUDIO_API_KEY": KEY},
    )
    try:
        line = read_until(child.stderr, "serving demo at ")
        url = line.split(" at ")[1].split()[0]
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        # hold the only slot: a request whose server has asked for its body (100 Continue) and not yet got it
        fields = {"model": "whisper-1", "response_format": "text", "temperature": "0"}
        body, content_type = form(fields, clip.name, clip.read_bytes())
        held = socket.create_connection(("127.0.0.1", port), timeout=300)
        held.sendall(
            f"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\nExpect: 100-continue\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        assert held.recv(1024).startswith(b"HTTP/1.1 100")
        status, error = refusal(
            lambda: client(url).audio.transcriptions.create(model="whisper-1", file=clip.open("rb"))
        )
        assert status == 503 and error["code"] == "server_busy" and "--queue" in error["message"]
        held.sendall(body)
        reply = b"".join(iter(lambda: held.recv(65536), b""))
        held.close()
        assert reply.startswith(b"HTTP/1.1 200") and reply.split(b"\r\n\r\n", 1)[1].strip()  # the held one answered
        again = client(url).audio.transcriptions.create(model="whisper-1", file=clip.open("rb"), temperature=0)
        assert again.text == reply.split(b"\r\n\r\n", 1)[1].decode().strip()  # the slot is free again
        status, _ = refusal(lambda: client(url, "sk-wrong").models.list())
        assert status == 401
    finally:
        child.send_signal(signal.SIGINT)  # Ctrl+C: uvicorn ends gracefully
        _, log = child.communicate(timeout=120)
    assert child.returncode == 0, log[-2000:]
    assert KEY not in log and "Traceback" not in log


def test_serve_command_parses_back_and_a_port_in_use_is_one_line():
    model = "runs/nb 1/checkpoint-400"
    args = build_parser(COMMANDS).parse_args(shlex.split(serve_command(model, 8123))[3:])
    assert (args.command, args.model, args.port, args.host) == ("serve", model, 8123, "127.0.0.1")
    assert "--port" not in serve_command(model)  # the default port is left out
    taken = listen("127.0.0.1", 0)
    with pytest.raises(StudioError, match="is in use.*--port"):
        listen("127.0.0.1", taken.getsockname()[1])
    taken.close()
