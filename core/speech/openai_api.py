"""OpenAI's audio API, as `serve` speaks it: the request form, the answers in each response_format, the error shape.

Pure functions of a request and a Transcript, with no web framework in them (core/speech/server.py wires them into
FastAPI). The shapes are the official client's (openai's `Transcription`, `TranscriptionVerbose`): `json` is
`{"text", "usage"}`, `verbose_json` adds the task, language name, duration, `segments` (id, seek, start, end, text,
tokens, and the decoding policy's measures where the engine reports them) and, when `word` is among the
timestamp_granularities, `words`; `text`, `srt` and `vtt` are the transcript writers' own text. With
`stream=true` the answer is server-sent events: a `transcript.text.delta` per batch of segments as they are decoded,
then `transcript.text.done`. A refusal is `{"error": {"message", "type", "param", "code"}}`.
"""

import hmac
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from core.audio.constants import FRAMES_PER_SECOND
from core.errors import StudioError
from core.languages import get_language
from core.speech.decoding import DecodingOptions
from core.speech.transcripts import Segment, Transcript, Word, to_srt, to_txt, to_vtt

KEY_ENV = "STUDIO_API_KEY"
OPENAI_ALIAS = "whisper-1"  # the model name OpenAI's clients and most apps send: here it means the served model
MAX_UPLOAD_BYTES = 25 * 1024 * 1024  # OpenAI's own limit for one file: 25 MB, some 13 minutes of 16-bit 16 kHz wav
TEXT_WRITERS = {"text": to_txt, "srt": to_srt, "vtt": to_vtt}
RESPONSE_FORMATS = ("json", *TEXT_WRITERS, "verbose_json")
GRANULARITIES = ("segment", "word")
STREAM_FORMATS = ("json", "text")  # a stream's events carry text: these two are all it can stand for


class ApiError(Exception):
    """A request the server refuses, in OpenAI's error shape: a status, one line naming the problem and the fix,
    the form field at fault (`param`) and a machine-readable `code`."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None, headers=None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.headers = headers or {}

    def body(self) -> dict:
        kind = "server_error" if self.status >= 500 else "invalid_request_error"
        return {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}


@dataclass(frozen=True)
class TranscriptionRequest:
    """One call of /v1/audio/transcriptions or /translations, checked and in our own terms."""

    data: bytes
    filename: str
    model: str  # as the client named it (an id of /v1/models, or whisper-1)
    task: str  # transcribe or translate
    language: str | None  # a Whisper code (`no`), None to detect it
    prompt: str | None
    temperature: float | None  # None: the decoding policy's own fallback ladder
    response_format: str
    granularities: tuple[str, ...]
    stream: bool = False  # answer as server-sent events: a text delta per segment as it is decoded, then done

    def decoding_options(self) -> DecodingOptions:
        """The decoding policy for this request: a given temperature is the only one tried (OpenAI's meaning)."""
        changes = {}
        if self.temperature is not None:
            changes["temperatures"] = (self.temperature,)
        if self.prompt:
            changes["initial_prompt"] = self.prompt
        if "word" in self.granularities:
            changes["word_timestamps"] = True
        return DecodingOptions(**changes)


def parse_request(
    fields: Mapping[str, str], granularities: list[str], data: bytes | None, filename: str, task: str
) -> TranscriptionRequest:
    """The form's fields (`granularities` from `timestamp_granularities[]`) → a request, or an ApiError 400 naming
    the field."""
    if data is None:
        raise ApiError(400, "no audio: send the file as the multipart field 'file'", "file", "missing_file")
    if len(data) > MAX_UPLOAD_BYTES:
        raise ApiError(
            400,
            f"{filename}: {len(data) / 2**20:.1f} MB, over the {MAX_UPLOAD_BYTES // 2**20} MB limit for one file; "
            "cut it shorter or compress it (ffmpeg -i FILE -c:a libopus out.ogg)",
            "file",
            "file_too_large",
        )
    response_format = fields.get("response_format") or "json"
    if response_format not in RESPONSE_FORMATS:
        raise ApiError(
            400, f"response_format '{response_format}': choose one of {', '.join(RESPONSE_FORMATS)}", "response_format"
        )
    unknown = [g for g in granularities if g not in GRANULARITIES]
    if unknown or (granularities and response_format != "verbose_json"):
        raise ApiError(
            400,
            f"timestamp_granularities {granularities}: give segment and/or word, with response_format verbose_json",
            "timestamp_granularities",
        )
    stream = _flag(fields.get("stream"), "stream")
    if stream and response_format not in STREAM_FORMATS:
        raise ApiError(
            400,
            f"stream with response_format '{response_format}': a stream sends text events; ask for json or text",
            "stream",
        )
    return TranscriptionRequest(
        data=data,
        filename=filename,
        model=(fields.get("model") or OPENAI_ALIAS).strip(),
        task=task,
        language=whisper_language(fields.get("language")),
        prompt=fields.get("prompt") or None,
        temperature=_temperature(fields.get("temperature")),
        response_format=response_format,
        granularities=tuple(dict.fromkeys(granularities)),
        stream=stream,
    )


def _flag(value: str | None, name: str) -> bool:
    """A form's boolean as OpenAI's clients send it (`true`/`false`)."""
    if value in (None, "", "false", "False", "0"):
        return False
    if value in ("true", "True", "1"):
        return True
    raise ApiError(400, f"{name} '{value}': give true or false", name)


def whisper_language(name: str | None) -> str | None:
    """A request's language (a code or a name) as a Whisper code, None when not given, a 400 when unknown."""
    if not name:
        return None
    try:
        return get_language(name).whisper
    except StudioError as err:
        raise ApiError(400, str(err), "language", "unsupported_language") from None


def _temperature(value: str | None) -> float | None:
    if value in (None, ""):
        return None
    try:
        temperature = float(value)
    except ValueError:
        temperature = math.nan
    if not 0 <= temperature <= 1:
        raise ApiError(400, f"temperature '{value}': give a number from 0 to 1", "temperature")
    return temperature


def check_key(expected: str | None, authorization: str | None) -> None:
    """Refuse a request without the server's key (when it has one): 401, the key compared in constant time."""
    if not expected:
        return
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise ApiError(401, "no API key given: send the server's key as 'Authorization: Bearer KEY'", None, "no_key")
    if not hmac.compare_digest(given.strip().encode(), expected.encode()):
        message = f"the API key is wrong: send the key the server was started with (--api-key or ${KEY_ENV})"
        raise ApiError(401, message, None, "invalid_api_key")


MEASURES = ("temperature", "avg_logprob", "compression_ratio", "no_speech_prob")  # per segment, when reported


def render(transcript: Transcript, request: TranscriptionRequest, encode: Callable[[str], list[int]]):
    """(body, media type) in the requested response_format, a dict body being JSON; `encode` gives a text's
    token ids."""
    if request.response_format in TEXT_WRITERS:
        return TEXT_WRITERS[request.response_format](transcript), "text/plain; charset=utf-8"
    usage = {"type": "duration", "seconds": math.ceil(transcript.duration)}  # OpenAI counts whole seconds
    if request.response_format == "json":
        return {"text": transcript.text, "usage": usage}, "application/json"
    spoken = [s for s in transcript.segments if s.text]  # as SRT and WebVTT: a window that said nothing is no cue
    body = {
        "task": request.task,
        "language": _language_name(transcript.language),
        "duration": round(transcript.duration, 3),
        "text": transcript.text,
    }
    if "segment" in request.granularities or not request.granularities:
        body["segments"] = [_segment(i, s, encode) for i, s in enumerate(spoken)]
    if "word" in request.granularities:
        body["words"] = [_word(w) for s in spoken for w in s.words]
    return {**body, "usage": usage}, "application/json"


def stream_event(event: dict) -> bytes:
    """One server-sent event, as OpenAI's streaming transcription sends it (`data: JSON`, a blank line)."""
    return f"data: {json.dumps(event, ensure_ascii=False)}\n\n".encode()


def text_delta(transcript: Transcript, already: int) -> tuple[dict | None, int]:
    """(the `transcript.text.delta` event for the segments after the first `already`, or None when they said
    nothing; how many segments it covers): deltas joined are the final text."""
    spoken = [s.text for s in transcript.segments[already:] if s.text]
    if not spoken:
        return None, len(transcript.segments)
    lead = " " if any(s.text for s in transcript.segments[:already]) else ""
    return {"type": "transcript.text.delta", "delta": lead + " ".join(spoken)}, len(transcript.segments)


def text_done(transcript: Transcript) -> dict:
    """The `transcript.text.done` event: the whole text, and the audio's length as the usage."""
    usage = {"type": "duration", "seconds": math.ceil(transcript.duration)}
    return {"type": "transcript.text.done", "text": transcript.text, "usage": usage}


def _segment(index: int, segment: Segment, encode: Callable[[str], list[int]]) -> dict:
    return {
        "id": index,
        "seek": round(segment.start * FRAMES_PER_SECOND),  # OpenAI's seek: mel frames into the file
        "start": round(segment.start, 3),
        "end": round(segment.end, 3),
        "text": segment.text,
        "tokens": encode(segment.text),
        # what the decoding policy measured for the window, where the engine reports it (null otherwise)
        **{name: getattr(segment, name, None) for name in MEASURES},
    }


def _word(word: Word) -> dict:
    """OpenAI's word (no leading space), with the model's probability for it."""
    return {
        "word": word.word.strip(),
        "start": round(word.start, 3),
        "end": round(word.end, 3),
        "probability": word.probability,
    }


def _language_name(code: str | None) -> str | None:
    """OpenAI names the language in verbose_json (`english`, not `en`)."""
    try:
        return get_language(code).name.lower() if code else None
    except StudioError:
        return code
