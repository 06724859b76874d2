"""Conversation logic with the real `openai` client against a local OpenAI-compatible server over a socket."""

import socket
import time

import pytest
from llm_standin import StandIn

from core.errors import StudioError
from core.speech.conversation import MAX_REPLY_CHARS, Conversation, Endpoint, reply, stream_reply


@pytest.fixture(scope="module")
def server():
    standin = StandIn().start()
    yield standin
    standin.shutdown()


def endpoint(server, model="echo", **changes) -> Endpoint:
    return Endpoint(**{"base_url": server.base_url, "model": model, "api_key": "sk-test-secret", **changes})


def test_streamed_replies_keep_the_history(server):
    chat = Conversation()
    pieces = list(stream_reply(chat, "hei på deg", endpoint(server)))
    assert len(pieces) > 3 and "".join(pieces) == "You said: hei på deg (turn 1)"
    assert reply(chat, "hvordan går det", endpoint(server)) == "You said: hvordan går det (turn 2)"
    assert [t.role for t in chat.turns] == ["user", "assistant", "user", "assistant"]
    assert [t.cut_off for t in chat.turns] == [None] * 4  # finished replies are not marked
    sent = server.requests[-1]["body"]["messages"]
    assert sent[0]["role"] == "system" and sent[1] == {"role": "user", "content": "hei på deg"}
    assert server.requests[-1]["authorization"] == "Bearer sk-test-secret"
    chat.clear()
    assert chat.turns == []


@pytest.mark.parametrize(
    "model, message",
    [
        ("fail-400", "refused the request (400: stand-in failure 400): check the model name"),
        ("fail-401", "refused the API key (401)"),
        ("fail-429", "rate-limiting (429)"),
        ("fail-500", "failed with HTTP 500"),
        ("fail-404", "not found (404)"),
    ],
)
def test_error_statuses_give_one_line_and_keep_the_conversation(server, model, message):
    chat = Conversation()
    reply(chat, "first", endpoint(server))
    for stream in (True, False):
        with pytest.raises(StudioError) as err:
            list(stream_reply(chat, "second", endpoint(server, model), stream=stream))
        assert message in str(err.value) and "\n" not in str(err.value)
        assert "sk-test-secret" not in str(err.value)
    assert len(chat.turns) == 2  # the failed turn did not join, the earlier one stayed


def test_timeout_and_connection_refused(server):
    with pytest.raises(StudioError, match="did not answer within 1 s"):
        reply(Conversation(), "hei", endpoint(server, "slow", timeout_s=1.0))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    with pytest.raises(StudioError, match=f"cannot connect to http://127.0.0.1:{port}/v1"):
        reply(Conversation(), "hei", Endpoint(base_url=f"http://127.0.0.1:{port}/v1", model="echo", api_key="k"))


def test_missing_key_for_openai_and_placeholder_for_local(server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(StudioError, match="no API key: set OPENAI_API_KEY"):
        reply(Conversation(), "hei", Endpoint(base_url="https://api.openai.com/v1", api_key=None))
    local = Endpoint(base_url=server.base_url, model="echo", api_key=None)
    assert reply(Conversation(), "hei", local).startswith("You said: hei")
    assert "api_key" not in repr(local)
    with pytest.raises(StudioError, match="empty"):
        reply(Conversation(), "   ", local)


@pytest.mark.parametrize("streamed", [True, False])
def test_a_200_that_is_not_the_chat_protocol_is_an_error_not_an_empty_turn(server, streamed):
    chat = Conversation()
    reply(chat, "hei", endpoint(server))
    with pytest.raises(StudioError, match="not with OpenAI's chat protocol"):
        list(stream_reply(chat, "og så", endpoint(server, model="garbage"), stream=streamed))
    assert len(chat.turns) == 2 and chat.turns[-1].content == "You said: hei (turn 1)"  # kept as it was


def test_a_dripping_stream_is_cut_off_at_the_deadline(server):
    chat = Conversation()
    started = time.monotonic()
    pieces = list(stream_reply(chat, "hei", endpoint(server, "drip", timeout_s=3.0, reply_deadline_s=1.0)))
    assert time.monotonic() - started < 1.0 + 2.0  # the stand-in drips for 10 s, each gap far inside the timeout
    last = chat.turns[-1]
    assert last.content == "".join(pieces) and last.content.startswith("tick tick")  # what arrived is kept
    assert last.cut_off == "the reply was cut off after 1 s (the deadline)"


def test_a_huge_reply_is_cut_off_at_the_size_limit(server):
    chat = Conversation()
    pieces = list(stream_reply(chat, "hei", endpoint(server, "huge")))
    assert len("".join(pieces)) == len(chat.turns[-1].content) == MAX_REPLY_CHARS == 20_000  # not the 10 MB sent
    assert chat.turns[-1].cut_off == "the reply was cut off after 20,000 characters (the size limit)"
    assert len(reply(chat, "og så", endpoint(server, "huge"))) == MAX_REPLY_CHARS  # whole, not streamed: the same
    assert chat.turns[-1].cut_off == chat.turns[1].cut_off
    reply(chat, "og nå", endpoint(server))
    assert [len(m["content"]) for m in server.requests[-1]["body"]["messages"][2::2]] == [MAX_REPLY_CHARS] * 2


@pytest.mark.parametrize(
    "model, problem",
    [
        ("not-json", "(a streamed line that is not JSON: 'this is not json')"),
        ("number", "(a streamed chunk whose content is 5, not text)"),
    ],
)
def test_a_malformed_stream_is_one_line_and_keeps_the_conversation(server, model, problem):
    chat = Conversation()
    reply(chat, "hei", endpoint(server))
    with pytest.raises(StudioError) as err:
        list(stream_reply(chat, "og så", endpoint(server, model)))
    assert str(err.value).startswith(f"{server.base_url} answered, but not with OpenAI's chat protocol {problem}")
    assert "\n" not in str(err.value)
    assert [t.content for t in chat.turns] == ["hei", "You said: hei (turn 1)"]  # kept as it was


def test_a_stream_closed_without_done_is_kept_but_marked_cut_off(server):
    chat = Conversation()
    assert "".join(stream_reply(chat, "hei", endpoint(server, "no-done"))) == "You said: hei (turn 1)"
    assert chat.turns[-1].content == "You said: hei (turn 1)"
    assert chat.turns[-1].cut_off == "the reply was cut off: the stream ended before the server finished it"


@pytest.mark.parametrize("key", ["sk-test-secret", "abc"])  # a short key is only hidden as a bearer token
def test_a_server_quoting_the_authorization_header_never_shows_the_key(server, key):
    for stream in (True, False):
        with pytest.raises(StudioError) as err:
            list(stream_reply(Conversation(), "hei", endpoint(server, "echo-auth", api_key=key), stream=stream))
        assert "refused the request (400: bad header Bearer [redacted]): check the model name" in str(err.value)
        assert key not in str(err.value) and server.requests[-1]["authorization"] == f"Bearer {key}"


def chat_page(base_url: str, model: str) -> None:
    """A page that sends one message through app/chat.py (AppTest runs this function's source as the script)."""
    import streamlit as st

    from app.chat import FAILED, render_history, send
    from core.languages import get_language
    from core.speech import Endpoint

    endpoint = Endpoint(base_url=base_url, model=model, api_key="sk-test-secret")
    render_history(endpoint, get_language("nb"), spoken=False)
    if not st.session_state.get(FAILED):  # as the page: a failed message waits for Retry, it is not sent again
        send("hei", endpoint, get_language("nb"), spoken=False)


@pytest.mark.parametrize(
    "model, shown, times",
    [
        # the second run shows the kept reply in the history and a new one under it, each with its caption
        ("no-done", "the reply was cut off: the stream ended before the server finished it", 2),
        ("not-json", "a streamed line that is not JSON", 1),  # nothing joined the history: only the new error
    ],
)
def test_the_page_shows_a_cut_off_or_malformed_reply_as_one_line(server, model, shown, times):
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_function(chat_page, args=(server.base_url, model), default_timeout=30)
    app.run().run()  # the session's conversation carries over to the second run, as between a user's messages
    assert not app.exception, [e.value for e in app.exception]
    lines = [c.value for c in app.caption] + [e.value for e in app.error]
    assert sum(shown in line for line in lines) == times, lines
    assert "sk-test-secret" not in str(app._tree)
