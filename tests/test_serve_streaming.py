"""`serve`'s streaming answers and its operator's view, over real sockets: `stream=true` read by the official
`openai` client, the Realtime-style WebSocket session with the `websockets` client (turns found by Silero, deltas
and completed transcripts, bad input answered with an error event), /health and /metrics counting what was served.

One server runs in a thread for the module: the demo model, a key, a 20 s audio limit, realtime sessions closed
after 2 s of silence from the client.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import socket
import time
import urllib.request
from pathlib import Path

import numpy as np
import openai
import pytest
import soundfile as sf
import websockets
from helpers import make_audio
from serve_helpers import KEY, client, form, health, metric, port_of, refusal, start
from websockets.sync.client import connect

from core.audio import SAMPLE_RATE, load_audio
from core.audio.decode import resample
from core.speech.server import ServeOptions, create_app

IDLE_S = 2.0


@pytest.fixture(scope="module")
def server(session_workspace):
    options = ServeOptions(model="demo", api_key=KEY, max_audio_s=20, realtime_idle_s=IDLE_S)
    url, stop = start(create_app(options, session_workspace))
    yield url
    stop()


@pytest.fixture(scope="module")
def phrases(tmp_path_factory) -> list[np.ndarray]:
    folder = tmp_path_factory.mktemp("streaming")
    texts = ["god morgen alle sammen", "takk for maten", "en to tre fire"]
    return [load_audio(make_audio(folder / f"p{i}.wav", text)) for i, text in enumerate(texts)]


@pytest.fixture(scope="module")
def recording(phrases, tmp_path_factory) -> Path:
    """The phrases 1 s apart: several windows of the demo model (3 s each)."""
    gap = np.zeros(SAMPLE_RATE, np.float32)
    path = tmp_path_factory.mktemp("recording") / "three.wav"
    sf.write(path, np.concatenate([part for p in phrases for part in (p, gap)]), SAMPLE_RATE)
    return path


def test_stream_true_sends_a_delta_per_window_then_the_whole_text(server, recording):
    create = client(server).audio.transcriptions.create
    whole = create(model="whisper-1", file=recording.open("rb"), temperature=0, language="no")
    events = list(create(model="whisper-1", file=recording.open("rb"), temperature=0, language="no", stream=True))
    kinds = [e.type for e in events]
    assert kinds[-1] == "transcript.text.done" and set(kinds[:-1]) == {"transcript.text.delta"}, kinds
    assert len(kinds) - 1 >= 2  # the windows' text came as it was decoded, not in one piece at the end
    assert "".join(e.delta for e in events[:-1]) == events[-1].text == whole.text
    status, error = refusal(
        lambda: create(model="whisper-1", file=recording.open("rb"), stream=True, response_format="srt")
    )
    assert status == 400 and error["param"] == "stream"


def test_a_stream_client_that_goes_away_cancels_its_work(server, phrases, caplog):
    gap = np.zeros(SAMPLE_RATE, np.float32)
    long = np.concatenate([part for _ in range(3) for p in phrases for part in (p, gap)])[: 19 * SAMPLE_RATE]
    data = _wav(long)
    body, content_type = form({"model": "whisper-1", "stream": "true", "temperature": "0"}, "long.wav", data)
    caplog.set_level(logging.INFO, logger="studio")
    with socket.create_connection(("127.0.0.1", port_of(server)), timeout=60) as sock:
        sock.sendall(
            f"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")  # the stream began; the client goes away
    deadline = time.monotonic() + 120  # a guard against a hang, not a measurement
    while health(server)["requests_in_progress"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    lines = [r.getMessage() for r in caplog.records if "disconnected" in r.getMessage()]
    assert len(lines) == 1 and "cancelled" in lines[0], lines
    assert not [r for r in caplog.records if r.exc_info]


def _wav(samples: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, SAMPLE_RATE, format="WAV")
    return buffer.getvalue()


def _pcm(samples: np.ndarray, rate: int) -> str:
    """16 kHz float samples → base64 of 16-bit little-endian PCM at `rate`."""
    audio = resample(samples, SAMPLE_RATE, rate)
    return base64.b64encode((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()).decode()


def _events(ws, until: str, count: int = 1, timeout: float = 120) -> list[dict]:
    """Events until `count` of type `until` have come (a guard against a hang, not a measurement)."""
    seen: list[dict] = []
    deadline = time.monotonic() + timeout
    while sum(e["type"] == until for e in seen) < count:
        seen.append(json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic()))))
    return seen


def _session(server: str, key: str = KEY, query: str = "intent=transcription"):
    url = server.replace("http://", "ws://") + f"/realtime?{query}"
    return connect(url, additional_headers={"Authorization": f"Bearer {key}"}, open_timeout=60)


def test_a_realtime_session_finds_turns_and_transcribes_each(server, phrases):
    rng = np.random.default_rng(0)
    tone = lambda seconds: rng.normal(0, 0.002, int(seconds * SAMPLE_RATE)).astype(np.float32)  # noqa: E731
    stream = np.concatenate([tone(0.6), phrases[0], tone(1.2), phrases[1], tone(1.2)])
    with _session(server) as ws:
        created = json.loads(ws.recv(timeout=60))
        assert created["type"] == "session.created" and created["session"]["audio"]["input"]["format"]["rate"] == 24000
        ws.send(json.dumps({"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
            "transcription": {"model": "whisper-1", "language": "no"},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 400},
        }}}}))  # fmt: skip
        assert _events(ws, "session.updated")[-1]["session"]["audio"]["input"]["transcription"]["language"] == "no"
        step = SAMPLE_RATE // 10  # 100 ms of audio per event, at 24 kHz as OpenAI's clients send it
        for i in range(0, len(stream), step):
            ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": _pcm(stream[i : i + step], 24000)}))
        events = _events(ws, "conversation.item.input_audio_transcription.completed", 2)
    kinds = [e["type"] for e in events]
    started = [e for e in events if e["type"] == "input_audio_buffer.speech_started"]
    stopped = [e for e in events if e["type"] == "input_audio_buffer.speech_stopped"]
    completed = [e for e in events if e["type"].endswith("transcription.completed")]
    assert len(started) == len(stopped) == 2 and kinds.count("input_audio_buffer.committed") == 2, kinds
    # the turns are where the phrases are (times in ms of the audio sent)
    first_end = (0.6 + len(phrases[0]) / SAMPLE_RATE) * 1000
    assert abs(started[0]["audio_start_ms"] - 600) < 300 and abs(stopped[0]["audio_end_ms"] - first_end) < 400
    assert started[1]["audio_start_ms"] > stopped[0]["audio_end_ms"]
    for done in completed:
        assert isinstance(done["transcript"], str) and done["usage"]["type"] == "duration"
        deltas = "".join(e["delta"] for e in events if e["type"].endswith(".delta") and e["item_id"] == done["item_id"])
        assert done["transcript"].startswith(deltas)  # deltas are never taken back
    assert [d["item_id"] for d in completed] == [s["item_id"] for s in started]


def test_manual_turns_commit_what_was_sent(server, phrases):
    with _session(server) as ws:
        _events(ws, "session.created")
        ws.send(json.dumps({"type": "session.update", "session": {"audio": {"input": {
            "format": {"type": "audio/pcm", "rate": 16000}, "turn_detection": None,
            "transcription": {"language": "no"},
        }}}}))  # fmt: skip
        _events(ws, "session.updated")
        ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        assert _events(ws, "error")[-1]["error"]["code"] == "input_audio_buffer_commit_empty"
        ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": _pcm(phrases[1], 16000)}))
        ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        events = _events(ws, "conversation.item.input_audio_transcription.completed")
    kinds = [e["type"] for e in events]
    assert "input_audio_buffer.committed" in kinds and "input_audio_buffer.speech_started" not in kinds


def test_a_realtime_session_answers_bad_input_with_an_error_event_and_goes_on(server, phrases):
    with _session(server) as ws:
        _events(ws, "session.created")
        ws.send("this is not json")
        assert _events(ws, "error")[-1]["error"]["code"] == "invalid_json"
        ws.send(b"\x00\x01binary")
        assert _events(ws, "error")[-1]["error"]["code"] == "invalid_event"
        ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": "%%% not base64 %%%"}))
        assert _events(ws, "error")[-1]["error"]["code"] == "invalid_audio"
        ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(b"\x01\x02\x03").decode()}))
        assert _events(ws, "error")[-1]["error"]["code"] == "invalid_audio"  # an odd number of bytes is no PCM16
        ws.send(json.dumps({"type": "response.create"}))
        assert _events(ws, "error")[-1]["error"]["code"] == "unknown_event"
        ws.send(json.dumps({"type": "session.update", "session": {"audio": {"input": {"format": {"rate": 3}}}}}))
        assert _events(ws, "error")[-1]["error"]["param"] == "format"
        ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
        assert _events(ws, "input_audio_buffer.cleared")  # still answering
    # too much audio: an error event, then the server closes
    with _session(server) as ws:
        _events(ws, "session.created")
        second = _pcm(np.zeros(SAMPLE_RATE, np.float32), 24000)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            for _ in range(30):  # 30 s, over the server's 20 s
                ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": second}))
            _events(ws, "never")
        assert closed.value.rcvd.code == 1009
    # silent for longer than --realtime-idle-s: an error event, then the server closes
    with _session(server) as ws:
        events = []
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                events.append(json.loads(ws.recv(timeout=IDLE_S + 60)))
        assert events[-1]["type"] == "error" and events[-1]["error"]["code"] == "idle_timeout"
    # refused before the session: a wrong key, another intent
    for key, query in (("sk-wrong", "intent=transcription"), (KEY, "model=gpt-realtime")):
        with pytest.raises(websockets.InvalidStatus):
            _session(server, key, query).close()
    deadline = time.monotonic() + 60
    while metric(server, "studio_realtime_sessions") or health(server)["requests_in_progress"]:
        assert time.monotonic() < deadline  # every session's slot, thread and model let go
        time.sleep(0.1)


def test_health_needs_no_key_and_metrics_count_what_was_served(server, recording):
    assert health(server) == {
        "status": "ok", "models_loaded": ["demo"], "requests_in_progress": 0, "windows_waiting": 0,
    }  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(server.removesuffix("/v1") + "/metrics", timeout=60)
    assert caught.value.code == 401  # the metrics are the key holder's
    served = 'studio_requests_total{endpoint="transcriptions",status="200"}'
    refused = 'studio_requests_total{endpoint="transcriptions",status="400"}'
    before = {name: metric(server, name) for name in (served, refused, "studio_audio_seconds_total")}
    batches = metric(server, "studio_batch_windows_count")
    client(server).audio.transcriptions.create(model="whisper-1", file=recording.open("rb"), temperature=0)
    with pytest.raises(openai.BadRequestError):
        client(server).audio.transcriptions.create(model="whisper-1", file=("x.wav", b"not audio"))
    assert metric(server, served) == before[served] + 1 and metric(server, refused) == before[refused] + 1
    seconds = sf.info(recording).duration
    assert metric(server, "studio_audio_seconds_total") == pytest.approx(before["studio_audio_seconds_total"] + seconds)
    assert metric(server, "studio_batch_windows_count") > batches
    assert metric(server, 'studio_request_seconds_count{endpoint="transcriptions"}') >= 2
