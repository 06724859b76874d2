"""Conversation mode: what was said goes to an LLM through the `openai` client, with the history, and the reply
comes back (streamed or whole).

Works with OpenAI and any OpenAI-compatible server (vLLM, Ollama, llama.cpp's server): the base URL and model name
are settings; the API key only ever comes from the environment (OPENAI_API_KEY) or Streamlit secrets and is never
shown, logged, or saved. Every fault becomes one StudioError line and the conversation is kept as it was, so the
user can fix the setting and send again.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

from core.errors import StudioError

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_SYSTEM_PROMPT = "You are a friendly conversation partner. Answer briefly, in the language the user speaks."
TIMEOUT_S = 60.0
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]", "0.0.0.0")


@dataclass
class Endpoint:
    """Where replies come from. `api_key` is never part of repr or any saved state."""

    base_url: str = field(default_factory=lambda: os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL)
    model: str = field(default_factory=lambda: os.environ.get("OPENAI_MODEL") or DEFAULT_MODEL)
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    api_key: str | None = field(default_factory=lambda: os.environ.get("OPENAI_API_KEY"), repr=False)
    timeout_s: float = TIMEOUT_S

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


@dataclass
class Conversation:
    """The chat so far: user and assistant turns, in order. The system prompt is added per request."""

    turns: list[dict] = field(default_factory=list)

    def messages(self, endpoint: Endpoint, user_text: str) -> list[dict]:
        return [
            {"role": "system", "content": endpoint.system_prompt},
            *self.turns,
            {"role": "user", "content": user_text},
        ]

    def add(self, user_text: str, reply: str) -> None:
        self.turns += [{"role": "user", "content": user_text}, {"role": "assistant", "content": reply}]

    def clear(self) -> None:
        self.turns.clear()


def _client(endpoint: Endpoint):
    from openai import OpenAI

    return OpenAI(
        base_url=endpoint.base_url, api_key=endpoint.key_for_request(), timeout=endpoint.timeout_s, max_retries=0
    )


def explain(err: Exception, endpoint: Endpoint) -> StudioError:
    """One line for each way a request fails; never includes the key."""
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


def _stream_pieces(client, endpoint: Endpoint, messages: list[dict]) -> Iterator[str]:
    for chunk in client.chat.completions.create(model=endpoint.model, messages=messages, stream=True):
        choices = getattr(chunk, "choices", None)
        if choices is None:
            raise _not_the_protocol(endpoint, "a streamed chunk without choices")
        delta = getattr(choices[0], "delta", None) if choices else None
        if delta is not None and getattr(delta, "content", None):
            yield delta.content


def _whole_reply(client, endpoint: Endpoint, messages: list[dict]) -> str:
    response = client.chat.completions.create(model=endpoint.model, messages=messages)
    choices = getattr(response, "choices", None)
    message = getattr(choices[0], "message", None) if isinstance(choices, list) and choices else None
    if message is None or not isinstance(getattr(message, "content", None), str):
        raise _not_the_protocol(endpoint, "no choices[0].message.content in the answer")
    return message.content


def stream_reply(conversation: Conversation, user_text: str, endpoint: Endpoint, stream: bool = True) -> Iterator[str]:
    """Yield the reply in pieces as they arrive; on success both turns join the conversation, on failure it is
    left as it was and a StudioError says why. An answer that is not the chat protocol, or an empty one, is a
    failure too: nothing empty is ever saved as the assistant's turn."""
    import openai

    user_text = user_text.strip()
    if not user_text:
        raise StudioError("nothing to send: the transcript is empty")
    messages = conversation.messages(endpoint, user_text)
    pieces: list[str] = []
    try:
        client = _client(endpoint)
        if stream:
            for piece in _stream_pieces(client, endpoint, messages):
                pieces.append(piece)
                yield piece
        else:
            pieces.append(_whole_reply(client, endpoint, messages))
            yield pieces[-1]
    except openai.APIError as err:
        raise explain(err, endpoint) from None
    if not "".join(pieces).strip():
        raise _not_the_protocol(endpoint, "an empty reply")
    conversation.add(user_text, "".join(pieces))
