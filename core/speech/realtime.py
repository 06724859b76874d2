"""A Realtime-style transcription session over a WebSocket: `/v1/realtime?intent=transcription`, as OpenAI's
Realtime API speaks it, on the live engine (core/speech/live.py) and the model's engine loop.

The client sends JSON events: `session.update` (audio.input.format: audio/pcm at 24 kHz, OpenAI's only rate, or
any rate from 8 to 48 kHz; transcription: model, language, prompt; turn_detection: server_vad, the default, with its
silence_duration_ms, or null for manual turns), `input_audio_buffer.append` (base64 of 16-bit little-endian mono
PCM), `input_audio_buffer.commit` (end the turn now) and `input_audio_buffer.clear`. The server answers with
`session.created`/`.updated`, and for each turn Silero finds: `input_audio_buffer.speech_started`, `.speech_stopped`
and `.committed`, then `conversation.item.input_audio_transcription.delta` (words two partial decodes agree on, as
whisper_streaming's LocalAgreement: they are not taken back) and `.completed` with the final transcript.

Bad input is one `error` event and the session goes on (not JSON, an unknown event, audio that is not base64 PCM);
audio past the server's --max-audio-s, or a session silent for --realtime-idle-s, is an error event and a close.
A session holds one of the server's request slots while it is open; closing it (either side) frees the slot, the
live session's thread and the model.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import json
import logging
import uuid
from dataclasses import dataclass, replace

import numpy as np

from core.audio.constants import INT16_SCALE, SAMPLE_RATE
from core.speech.admission import Admission
from core.speech.batching import BatchedEngine, Cancelled, Job
from core.speech.decoding import LIVE
from core.speech.live import SILENCE_END_S, LiveEvent, LiveSession
from core.speech.model_pool import ModelPool
from core.speech.observability import REQUEST_ID, Metrics
from core.speech.openai_api import ApiError, check_key, whisper_language

log = logging.getLogger("studio")
PCM_RATE = 24000  # OpenAI's audio/pcm: 16-bit little-endian mono at 24 kHz
RATES = (8000, 48000)  # sample rates a session may declare, Hz
POLICY_VIOLATION = 1008  # WebSocket close codes (RFC 6455)
TOO_BIG = 1009


@dataclass(frozen=True)
class Settings:
    model: str = "whisper-1"
    language: str | None = None  # a Whisper code
    prompt: str | None = None
    rate: int = PCM_RATE
    server_vad: bool = True
    silence_s: float = SILENCE_END_S

    def session(self) -> dict:
        """The session as OpenAI's `session.created`/`.updated` describe it."""
        turns = {"type": "server_vad", "silence_duration_ms": round(self.silence_s * 1000)} if self.server_vad else None
        transcription = {"model": self.model, "language": self.language, "prompt": self.prompt}
        audio = {"format": {"type": "audio/pcm", "rate": self.rate}, "transcription": transcription}
        return {"type": "transcription", "audio": {"input": {**audio, "turn_detection": turns}}}

    def updated(self, session: dict) -> Settings:
        """These settings with a `session.update`'s changes, or an ApiError naming the field."""
        given = (session.get("audio") or {}).get("input") or {}
        changes = {}
        if "format" in given:
            fmt = given["format"] or {}
            rate = fmt.get("rate", PCM_RATE)
            if (
                fmt.get("type", "audio/pcm") != "audio/pcm"
                or not isinstance(rate, int)
                or not RATES[0] <= rate <= RATES[1]
            ):
                raise ApiError(400, f"format {fmt}: send audio/pcm (16-bit mono) at 8000 to 48000 Hz", "format")
            changes["rate"] = rate
        transcription = given.get("transcription") or {}
        for name in ("model", "prompt"):
            if transcription.get(name):
                changes[name] = str(transcription[name])
        if "language" in transcription:
            changes["language"] = whisper_language(transcription["language"])
        if "turn_detection" in given:
            turns = given["turn_detection"]
            changes["server_vad"] = turns is not None
            silence_ms = (turns or {}).get("silence_duration_ms")
            if silence_ms is not None:
                if not isinstance(silence_ms, int | float) or not 100 <= silence_ms <= 5000:
                    raise ApiError(400, f"silence_duration_ms {silence_ms}: give 100 to 5000", "turn_detection")
                changes["silence_s"] = silence_ms / 1000
        return replace(self, **changes)


class RealtimeSession:
    """One WebSocket's session: events in, the live engine, events out (sent in order by one task)."""

    def __init__(self, websocket, pool: ModelPool, options, job: Job):
        self.websocket, self.pool, self.options, self.job = websocket, pool, options, job
        self.loop = asyncio.get_running_loop()
        self.outbox: asyncio.Queue = asyncio.Queue()
        self.settings, self.model, self.live, self.sending = Settings(), None, None, None
        self.audio_s, self.ids = 0.0, itertools.count(1)
        self.prefix = uuid.uuid4().hex[:8]
        self.said: dict[int, list[str]] = {}  # words sent as deltas, per utterance
        self.partials: dict[int, list[str]] = {}  # the last partial's words, per utterance

    # --- events out
    def send(self, kind: str, **fields) -> None:
        """Queue an event (from any thread: the live session's worker calls this too)."""
        event = {"type": kind, "event_id": f"event_{self.prefix}_{next(self.ids)}", **fields}
        self.loop.call_soon_threadsafe(self.outbox.put_nowait, event)

    def error(self, message: str, code: str, param: str | None = None) -> None:
        self.send("error", error={"type": "invalid_request_error", "code": code, "message": message, "param": param})

    async def sender(self) -> None:
        while (event := await self.outbox.get()) is not None:
            try:
                await self.websocket.send_text(json.dumps(event, ensure_ascii=False))
            except Exception:  # noqa: BLE001 (the socket closed: the receiving side ends the session)
                return

    async def flush_and_stop_sending(self) -> None:
        """Send every event queued so far (they are queued through the loop: the end mark goes the same way)."""
        self.loop.call_soon_threadsafe(self.outbox.put_nowait, None)
        if self.sending is not None:
            await asyncio.wait([self.sending], timeout=5)

    def item(self, index: int) -> str:
        return f"item_{self.prefix}_{index:04d}"

    def heard(self, event: LiveEvent) -> None:
        """A live session's event → Realtime events."""
        item = self.item(event.index)
        if event.kind == "started" and self.settings.server_vad:
            self.send("input_audio_buffer.speech_started", audio_start_ms=round(event.at_s * 1000), item_id=item)
        elif event.kind == "stopped":
            if self.settings.server_vad:
                self.send("input_audio_buffer.speech_stopped", audio_end_ms=round(event.at_s * 1000), item_id=item)
            previous = self.item(event.index - 1) if event.index else None
            self.send("input_audio_buffer.committed", item_id=item, previous_item_id=previous)
        elif event.kind == "partial":
            words, before = event.text.split(), self.partials.get(event.index, [])
            agreed = list(itertools.takewhile(lambda pair: pair[0] == pair[1], zip(words, before)))
            self.partials[event.index] = words
            self.delta(event.index, [w for w, _ in agreed])
        elif event.kind == "final" and event.error:
            error = {"type": "transcription_error", "code": "transcription_failed", "message": event.error}
            self.send("conversation.item.input_audio_transcription.failed", item_id=item, content_index=0, error=error)
        elif event.kind == "final":
            self.delta(event.index, event.text.split())
            usage = {"type": "duration", "seconds": round(self.audio_s, 3)}
            fields = dict(item_id=item, content_index=0, transcript=event.text, usage=usage)
            self.send("conversation.item.input_audio_transcription.completed", **fields)
            self.said.pop(event.index, None), self.partials.pop(event.index, None)

    def delta(self, index: int, words: list[str]) -> None:
        """Send the words of `words` past those already sent, when they continue them (a final that takes back a
        sent word sends no delta; its completed event has the whole text)."""
        said = self.said.setdefault(index, [])
        if words[: len(said)] == said and len(words) > len(said):
            lead = " " if said else ""
            fields = dict(item_id=self.item(index), content_index=0, delta=lead + " ".join(words[len(said) :]))
            self.send("conversation.item.input_audio_transcription.delta", **fields)
            said += words[len(said) :]

    # --- events in
    def start_live(self) -> None:
        """A live session for the current settings (the model acquired before)."""
        model, settings = self.model, self.settings
        transcriber = model.transcriber.using(BatchedEngine(model.loop, self.job))
        options = replace(LIVE, initial_prompt=settings.prompt)

        def transcribe(audio: np.ndarray) -> str:
            try:
                segments = transcriber.transcribe_array(audio, language=settings.language, options=options)
            except Cancelled:
                return ""  # the session is closing: nothing to say
            return " ".join(s.text for s in segments).strip()

        window_s = transcriber.window / SAMPLE_RATE
        self.live = LiveSession(transcribe, window_s, settings.silence_s, self.heard, detect=settings.server_vad)

    async def handle(self, text: str) -> bool:
        """One client event; False when the session must close."""
        try:
            event = json.loads(text)
            kind = event.get("type") if isinstance(event, dict) else None
        except json.JSONDecodeError:
            self.error("the message is not JSON: send Realtime events as JSON text", "invalid_json")
            return True
        try:
            if kind == "session.update":
                await self.update(event.get("session") or {})
            elif kind == "input_audio_buffer.append":
                return self.append(event.get("audio"))
            elif kind == "input_audio_buffer.commit":
                if not self.live.in_utterance:
                    message = "the input audio buffer is empty: append audio (speech) before committing"
                    self.error(message, "input_audio_buffer_commit_empty")
                self.live.flush()
            elif kind == "input_audio_buffer.clear":
                self.live.clear()
                self.send("input_audio_buffer.cleared")
            else:
                known = "session.update, input_audio_buffer.append, .commit or .clear"
                self.error(f"event type {kind!r} is not one this server takes: send {known}", "unknown_event", "type")
        except ApiError as err:
            self.error(err.message, err.code or "invalid_value", err.param)
        return True

    async def update(self, session: dict) -> None:
        settings = self.settings.updated(session)
        if settings.model != self.settings.model:
            if self.audio_s:
                raise ApiError(400, "the model can only be chosen before the first audio", "model")
            model = await self.pool.acquire(self.pool.location(settings.model))
            self.pool.release(self.model)
            self.model = model
        self.settings = settings
        await asyncio.to_thread(self.live.close)  # after the utterance in hand: not on the event loop's thread
        self.start_live()
        self.send("session.updated", session=settings.session())

    def append(self, audio: object) -> bool:
        try:
            data = base64.b64decode(audio if isinstance(audio, str) else "", validate=True)
        except (binascii.Error, ValueError):
            data = b"x"  # refused below
        if not data or len(data) % 2:
            self.error(
                "audio: give base64 of 16-bit little-endian mono PCM (an even number of bytes)",
                "invalid_audio",
                "audio",
            )
            return True
        samples = np.frombuffer(data, "<i2").astype(np.float32) / INT16_SCALE
        self.audio_s += len(samples) / self.settings.rate
        if self.audio_s > self.options.max_audio_s:
            limit = f"{self.options.max_audio_s:.0f} s"
            self.error(f"this session sent more than the server's {limit} of audio: start a new one", "audio_too_long")
            return False
        self.live.push(samples, self.settings.rate)
        return True


async def serve_session(websocket, pool: ModelPool, admission: Admission, options, metrics: Metrics) -> None:
    """The `/v1/realtime` endpoint: refuse what it cannot serve, run the session, let go of everything."""
    label = f"realtime session {REQUEST_ID.get()}"
    try:
        check_key(options.api_key, websocket.headers.get("authorization"))
        if websocket.query_params.get("intent") != "transcription":
            raise ApiError(
                400, "this server's realtime sessions are for transcription: connect with ?intent=transcription"
            )
        job = admission.admit()
    except ApiError as err:
        await websocket.close(code=POLICY_VIOLATION, reason=err.message[:120])
        return
    session = RealtimeSession(websocket, pool, options, job)
    metrics.sessions.inc()
    try:
        session.model = await pool.acquire(pool.location(websocket.query_params.get("model") or "whisper-1"))
        await websocket.accept()
        session.sending = asyncio.ensure_future(session.sender())
        session.start_live()
        session.send("session.created", session=session.settings.session())
        await _receive(session, options.realtime_idle_s, label)
    except ApiError as err:
        await websocket.close(code=POLICY_VIOLATION, reason=err.message[:120])
    finally:
        job.cancel("the realtime session closed")
        if session.live is not None:
            await asyncio.to_thread(session.live.close)
        await session.flush_and_stop_sending()
        if session.model is not None:
            pool.release(session.model)
        admission.release(job)
        metrics.sessions.dec()


async def _receive(session: RealtimeSession, idle_s: float, label: str) -> None:
    """Client events until it closes, goes quiet for `idle_s`, or a limit ends the session."""
    from starlette.websockets import WebSocketDisconnect

    websocket = session.websocket
    try:
        while True:
            try:
                message = await asyncio.wait_for(websocket.receive(), idle_s)
            except TimeoutError:
                if session.live is not None and session.live.transcribing:
                    continue  # the client is waiting for our transcripts (a loaded server is slow), not idle
                session.error(f"no event for {idle_s:g} s: the session is closed", "idle_timeout")
                await _close(session, POLICY_VIOLATION, "idle")
                return
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is None:
                session.error(
                    "binary frames are not events: send JSON text (audio as base64 in append)", "invalid_event"
                )
                continue
            if not await session.handle(message["text"]):
                await _close(session, TOO_BIG, "too much audio")
                return
    except WebSocketDisconnect:
        log.info("%s: the client went away", label)


async def _close(session: RealtimeSession, code: int, reason: str) -> None:
    """Send what is queued (the error event), then close."""
    await session.flush_and_stop_sending()
    await session.websocket.close(code=code, reason=reason)
