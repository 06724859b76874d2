"""Conversation mode: what was said goes to an LLM through the `openai` client, with the history, and the reply
comes back (streamed or whole).

Works with OpenAI and any OpenAI-compatible server (vLLM, Ollama, llama.cpp's server): the base URL and model name
are settings; the API key only ever comes from the environment (OPENAI_API_KEY) or Streamlit secrets and is never
shown, logged, or saved, and is cut out of every message that leaves this module (a server may quote the
Authorization header back). Every fault becomes one StudioError line and the conversation is kept as it was, so the
user can fix the setting and send again. A reply is bounded as a whole (REPLY_DEADLINE_S, MAX_REPLY_CHARS); one that
hits a bound, or whose stream ends before the server finished it, is kept and marked as cut off on its Turn.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field

from core.errors import StudioError

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_SYSTEM_PROMPT = "You are a friendly conversation partner. Answer briefly, in the language the user speaks."
TIMEOUT_S = 60.0
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]", "0.0.0.0")
# The read timeout only bounds a silence: a server that keeps sending (a runaway generation, a model repeating
# itself, a proxy trickling bytes) never trips it. Everything kept joins the history, is sent again with every later
# turn and goes to espeak-ng, so the reply is bounded as a whole too: a minute of wall clock from the request, and
# 20,000 characters (some 3,000 words, far past any answer in a conversation, still cheap to resend and to speak).
REPLY_DEADLINE_S = 60.0
MAX_REPLY_CHARS = 20_000
# RFC 6750's token characters, so the redaction stops where the token does and keeps the punctuation around it.
BEARER = re.compile(r"Bearer\s+[A-Za-z0-9\-._~+/]+=*", re.IGNORECASE)
# Shorter keys are placeholders ("k", "none") that local servers ignore; cutting them out of a message would garble
# every word they occur in, while the Bearer pattern still hides them where a server quotes the header.
MIN_SECRET_CHARS = 6


@dataclass
class Endpoint:
    """Where replies come from. `api_key` is never part of repr or any saved state."""

    base_url: str = field(default_factory=lambda: os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL)
    model: str = field(default_factory=lambda: os.environ.get("OPENAI_MODEL") or DEFAULT_MODEL)
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    api_key: str | None = field(default_factory=lambda: os.environ.get("OPENAI_API_KEY"), repr=False)
    timeout_s: float = TIMEOUT_S  # per read: how long the server may stay silent
    reply_deadline_s: float = REPLY_DEADLINE_S  # the whole streamed reply, from the request to its last piece
    max_reply_chars: int = MAX_REPLY_CHARS

    def key_for_request(self) -> str:
        """The key to send; local OpenAI-compatible servers accept any placeholder, OpenAI needs a real one."""
        if self.api_key:
            return self.api_key
        if any(host in self.base_url for host in LOCAL_HOSTS):
            return "not-needed"  # vLLM, Ollama and llama.cpp ignore the key unless configured to check it
        raise StudioError(
            "no API key: set OPENAI_API_KEY in the environment (or in .streamlit/secrets.toml), "
            "or point the base URL at a local OpenAI-compatible server"
        )


@dataclass(frozen=True)
class Turn:
    """One turn of the chat. `cut_off` says, in one line, why an assistant reply is incomplete (a bound was hit, the
    stream ended early); None for a reply the server finished."""

    role: str  # "user" or "assistant"
    content: str
    cut_off: str | None = None


@dataclass
class Conversation:
    """The chat so far: user and assistant turns, in order. The system prompt is added per request."""

    turns: list[Turn] = field(default_factory=list)

    def messages(self, endpoint: Endpoint, user_text: str) -> list[dict]:
        return [
            {"role": "system", "content": endpoint.system_prompt},
            *({"role": turn.role, "content": turn.content} for turn in self.turns),
            {"role": "user", "content": user_text},
        ]

    def add(self, user_text: str, reply: str, cut_off: str | None = None) -> None:
        self.turns += [Turn("user", user_text), Turn("assistant", reply, cut_off)]

    def clear(self) -> None:
        self.turns.clear()


def _client(endpoint: Endpoint):
    from openai import OpenAI

    return OpenAI(
        base_url=endpoint.base_url, api_key=endpoint.key_for_request(), timeout=endpoint.timeout_s, max_retries=0
    )


def redact(text: str, endpoint: Endpoint) -> str:
    """`text` as one line without the API key or any bearer token: every message leaving this module passes here."""
    if endpoint.api_key and len(endpoint.api_key) >= MIN_SECRET_CHARS:
        text = text.replace(endpoint.api_key, "[redacted]")
    return " ".join(BEARER.sub("Bearer [redacted]", text).split())


def explain(err: Exception, endpoint: Endpoint) -> StudioError:
    """One line for each way a request fails; never includes the key (the server's own words may quote it)."""
    return StudioError(redact(str(_explain(err, endpoint)), endpoint))


def _explain(err: Exception, endpoint: Endpoint) -> StudioError:
    import openai

    where = f"{endpoint.base_url} (model {endpoint.model})"
    if isinstance(err, openai.AuthenticationError):
        return StudioError(f"{where} refused the API key (401): check OPENAI_API_KEY")
    if isinstance(err, openai.PermissionDeniedError):
        return StudioError(f"{where} denied access (403): the key lacks access to this model")
    if isinstance(err, openai.NotFoundError):
        return StudioError(f"{where}: not found (404): check the base URL (it usually ends in /v1) and the model name")
    if isinstance(err, openai.RateLimitError):
        return StudioError(f"{where} is rate-limiting (429): wait a moment and send again, or check your quota")
    if isinstance(err, openai.APITimeoutError):
        return StudioError(f"{where} did not answer within {endpoint.timeout_s:g} s: try again, or a smaller model")
    if isinstance(err, openai.APIConnectionError):
        return StudioError(f"cannot connect to {endpoint.base_url}: is the server running and the URL right?")
    if isinstance(err, openai.BadRequestError):
        return StudioError(
            f"{where} refused the request (400: {_server_message(err)}): check the model name and the settings"
        )
    if isinstance(err, openai.APIStatusError) and err.status_code >= 500:
        return StudioError(f"{where} failed with HTTP {err.status_code}: the server's problem; send again later")
    if isinstance(err, openai.APIStatusError):
        return StudioError(f"{where} refused the request (HTTP {err.status_code}: {_server_message(err)})")
    if isinstance(err, openai.APIResponseValidationError):
        return _not_the_protocol(endpoint, "a malformed answer")
    return StudioError(f"{where}: {type(err).__name__}: {str(err)[:200]}")


def _server_message(err) -> str:
    """The server's own words about a refused request, kept short."""
    body = getattr(err, "body", None)
    if isinstance(body, dict):
        detail = body.get("error", body)
        message = detail.get("message") if isinstance(detail, dict) else detail
        return str(message)[:200]
    return str(getattr(err, "message", "") or err)[:200]


def reply(conversation: Conversation, user_text: str, endpoint: Endpoint) -> str:
    """The whole reply at once; the conversation gains both turns only when it succeeds."""
    return "".join(stream_reply(conversation, user_text, endpoint, stream=False))


def _not_the_protocol(endpoint: Endpoint, what: str) -> StudioError:
    return StudioError(
        f"{endpoint.base_url} answered, but not with OpenAI's chat protocol ({what}): is the base URL an "
        f"OpenAI-compatible endpoint (it usually ends in /v1)?"
    )


def _chunk_parts(chunk, endpoint: Endpoint) -> tuple[str, str | None]:
    """A streamed chunk's text and finish_reason. The client builds chunks without validating them, so whatever
    JSON the server sent arrives here: anything but the chat protocol's shape is refused."""
    choices = getattr(chunk, "choices", None)
    if not isinstance(choices, list):
        raise _not_the_protocol(endpoint, "a streamed chunk without a list of choices")
    if not choices:
        return "", None  # the usage-only last chunk some servers send
    content = getattr(getattr(choices[0], "delta", None), "content", None)
    if content is not None and not isinstance(content, str):
        raise _not_the_protocol(endpoint, f"a streamed chunk whose content is {content!r:.40}, not text")
    return content or "", getattr(choices[0], "finish_reason", None)


def _cut_at_chars(endpoint: Endpoint) -> str:
    return f"the reply was cut off after {endpoint.max_reply_chars:,} characters (the size limit)"


def _stream_pieces(client, endpoint: Endpoint, messages: list[dict]) -> Generator[str, None, tuple[str, str | None]]:
    """Yield the pieces as they arrive; return the text kept and why it is cut off (None when the server finished
    it). Leaving the `with` early closes the connection, so a bound stops the server's sending too."""
    started = time.monotonic()
    kept: list[str] = []
    size = 0
    finish_reason = None
    try:
        with client.chat.completions.create(model=endpoint.model, messages=messages, stream=True) as chunks:
            for chunk in chunks:
                piece, finished = _chunk_parts(chunk, endpoint)
                finish_reason = finished or finish_reason
                over = size + len(piece) > endpoint.max_reply_chars
                piece = piece[: endpoint.max_reply_chars - size]
                if piece:
                    kept.append(piece)
                    size += len(piece)
                    yield piece
                if over:
                    return "".join(kept), _cut_at_chars(endpoint)
                # checked as each chunk arrives: a silence between two is the read timeout's to bound
                if finish_reason is None and time.monotonic() - started > endpoint.reply_deadline_s:
                    return "".join(kept), f"the reply was cut off after {endpoint.reply_deadline_s:g} s (the deadline)"
    except (json.JSONDecodeError, UnicodeDecodeError) as err:  # raised from inside the client's SSE decoding
        line = err.doc if isinstance(err, json.JSONDecodeError) else err.object.decode("utf-8", "replace")
        raise _not_the_protocol(endpoint, f"a streamed line that is not JSON: {line[:60]!r}") from None
    if finish_reason is None:
        # The client ends the stream alike at the [DONE] sentinel and at a closed connection, and does not say
        # which; every server sends a finish_reason with the last piece, so its absence marks a stream cut short.
        return "".join(kept), "the reply was cut off: the stream ended before the server finished it"
    return "".join(kept), None


def _whole_reply(client, endpoint: Endpoint, messages: list[dict]) -> tuple[str, str | None]:
    response = client.chat.completions.create(model=endpoint.model, messages=messages)
    choices = getattr(response, "choices", None)
    message = getattr(choices[0], "message", None) if isinstance(choices, list) and choices else None
    if message is None or not isinstance(getattr(message, "content", None), str):
        raise _not_the_protocol(endpoint, "no choices[0].message.content in the answer")
    if len(message.content) > endpoint.max_reply_chars:
        return message.content[: endpoint.max_reply_chars], _cut_at_chars(endpoint)
    return message.content, None


def stream_reply(conversation: Conversation, user_text: str, endpoint: Endpoint, stream: bool = True) -> Iterator[str]:
    """Yield the reply in pieces as they arrive; on success both turns join the conversation, on failure it is
    left as it was and a StudioError says why. An answer that is not the chat protocol, or an empty one, is a
    failure too: nothing empty is ever saved as the assistant's turn. A reply that hits the deadline or the size
    limit, or whose stream ends before the server finished it, joins as far as it came, its Turn marked `cut_off`."""
    import openai

    user_text = user_text.strip()
    if not user_text:
        raise StudioError("nothing to send: the transcript is empty")
    messages = conversation.messages(endpoint, user_text)
    try:
        client = _client(endpoint)
        if stream:
            text, cut_off = yield from _stream_pieces(client, endpoint, messages)
        else:
            text, cut_off = _whole_reply(client, endpoint, messages)
            yield text
        if not text.strip():
            if cut_off:
                raise StudioError(f"{endpoint.base_url}: {cut_off}, before any text arrived: send again")
            raise _not_the_protocol(endpoint, "an empty reply")
    except openai.APIError as err:
        raise explain(err, endpoint) from None
    except StudioError as err:  # our own lines quote the server's words too
        raise StudioError(redact(str(err), endpoint)) from None
    conversation.add(user_text, text, cut_off)
