"""Conversation logic with the real `openai` client against a local OpenAI-compatible server over a socket."""

import socket

import pytest
from llm_standin import StandIn

from core.errors import StudioError
from core.speech.conversation import Conversation, Endpoint, reply, stream_reply


@pytest.fixture(scope="module")
def server():
    standin = StandIn().start()
    yield standin
    standin.shutdown()


def endpoint(server, model="echo", **changes) -> Endpoint:
    return Endpoint(base_url=server.base_url, model=model, api_key="sk-test-secret", **changes)


def test_streamed_replies_keep_the_history(server):
    chat = Conversation()
    pieces = list(stream_reply(chat, "hei på deg", endpoint(server)))
    assert len(pieces) > 3 and "".join(pieces) == "You said: hei på deg (turn 1)"
    assert reply(chat, "hvordan går det", endpoint(server)) == "You said: hvordan går det (turn 2)"
    assert [t["role"] for t in chat.turns] == ["user", "assistant", "user", "assistant"]
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
    assert len(chat.turns) == 2 and chat.turns[-1]["content"] == "You said: hei (turn 1)"  # kept as it was
