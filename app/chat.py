"""Conversation mode's widgets: endpoint settings, the chat history, and sending one utterance to the LLM.

The Conversation lives in session state (one per browser tab). The key is read from the environment or secrets
each time and never stored in session state, shown, or logged. A reply that was cut off (the deadline, the size
limit, a stream that ended early) is shown as far as it came, with a caption saying why; a message whose reply
failed stays at the end of the chat with why and a Retry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from app.tab_state import secret
from app.widgets import user_errors
from core.errors import StudioError
from core.languages import Language
from core.speech import DEFAULT_SYSTEM_PROMPT, Conversation, Endpoint, speak, stream_reply

if TYPE_CHECKING:
    from core.speech import Turn

CHAT = "conversation"
SPOKEN = "conversation_spoken"  # wav bytes of the last reply, when spoken replies are on
FAILED = "conversation_failed"  # (message, why) of the reply that failed: shown in place, with a Retry


def conversation() -> Conversation:
    return st.session_state.setdefault(CHAT, Conversation())


def clear_conversation() -> None:
    conversation().clear()
    st.session_state.pop(FAILED, None)


def endpoint_settings() -> Endpoint:
    defaults = Endpoint()
    with st.expander("LLM endpoint", expanded=False):
        base_url = st.text_input(
            "Base URL",
            secret("OPENAI_BASE_URL") or defaults.base_url,
            key="llm_base_url",
            help="OpenAI, or any OpenAI-compatible server: vLLM, Ollama "
            "(http://localhost:11434/v1), llama.cpp (http://localhost:8080/v1)",
        )
        model = st.text_input("Model", secret("OPENAI_MODEL") or defaults.model, key="llm_model")
        system = st.text_area("System prompt", DEFAULT_SYSTEM_PROMPT, key="llm_system", height=80)
        key = secret("OPENAI_API_KEY")
        st.caption(
            "API key: found in the environment or secrets (not shown)."
            if key
            else "API key: none. Set OPENAI_API_KEY in the environment or .streamlit/secrets.toml; local "
            "servers need none."
        )
    return Endpoint(base_url=base_url, model=model, system_prompt=system, api_key=key)


def cut_off_caption(turn: Turn) -> None:
    if turn.cut_off:
        st.caption(f":material/content_cut: {turn.cut_off}")


def render_history(endpoint: Endpoint, language: Language, spoken: bool) -> None:
    """The conversation so far, then the message whose reply failed, in its place at the end, with why and a Retry."""
    for turn in conversation().turns:
        with st.chat_message(turn.role):
            st.write(turn.content)
            cut_off_caption(turn)
    failed = st.session_state.get(FAILED)
    if failed:
        text, error = failed
        with st.chat_message("user"):
            st.write(text)
        with st.chat_message("assistant"):
            st.error(f"Not answered: {error}", icon=":material/error:")
            if st.button("Retry", icon=":material/replay:", key="chat_retry") and send(
                text, endpoint, language, spoken
            ):
                st.rerun()  # answered: the history shows it in place of the failed turn
    if st.session_state.get(SPOKEN):
        st.audio(st.session_state[SPOKEN], format="audio/wav", autoplay=True)


def send(text: str, endpoint: Endpoint, language: Language, spoken: bool, into=None) -> bool:
    """Show the user's turn, stream the reply into the chat (the container `into`, under the history). On a fault
    the message is kept with why it failed, and the page runs again to show it in place with a Retry."""
    target = into or st.container()
    with target, st.chat_message("user"):
        st.write(text)
    with target, st.chat_message("assistant"):
        try:
            st.write_stream(stream_reply(conversation(), text, endpoint))
        except StudioError as err:
            st.session_state[FAILED] = (text, str(err))
            st.rerun()
        st.session_state.pop(FAILED, None)  # answered: an earlier unanswered message is not asked again
        answer = conversation().turns[-1]  # the reply as kept: within the size limit, so espeak-ng gets no more
        cut_off_caption(answer)
    st.session_state[SPOKEN] = None
    if spoken:
        with user_errors():
            st.session_state[SPOKEN] = speak(answer.content, language)
    return True
