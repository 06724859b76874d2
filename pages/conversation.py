"""Conversation: say (record, upload, speak hands-free) or type something, see what the speech model heard and in
which language, send it to an LLM and keep the conversation."""

import hashlib

import streamlit as st

from app.chat import clear_conversation, endpoint_settings, render_history, send
from app.microphone import live_session, microphone
from app.model_cache import model_choices, transcript_of
from app.tab_state import follow, workspace
from app.widgets import language_picker, user_errors
from core.speech import language_line
from core.training import workspace_language

TAKE = "chat_take"  # a new number after each sent spoken turn: the recorder and uploader start empty again

st.title("Conversation")
choices = model_choices()
top = st.columns([3, 2])
label = top[0].selectbox("Speech model", list(choices), key="chat_model", help="what turns your voice into text")
model = choices[label]
with top[1]:
    whisper_language, language = language_picker("chat_language", default=workspace_language(workspace()))

endpoint = endpoint_settings()
controls = st.columns([3, 1, 1])
mode = (
    controls[0].segmented_control(
        "Input", ["Push to talk", "Upload a clip", "Hands-free", "Type"], default="Push to talk", key="chat_mode"
    )
    or "Push to talk"
)
spoken = controls[1].toggle("Speak replies", key="chat_spoken", help="espeak-ng, in the chosen language")
controls[2].button("Clear conversation", icon=":material/delete:", on_click=clear_conversation)
log = st.container()  # the chat: history, then new turns, always above the inputs
with log:
    render_history(endpoint, language, spoken)

if mode in ("Push to talk", "Upload a clip"):
    take = st.session_state.setdefault(TAKE, 0)
    if mode == "Push to talk":
        said = st.audio_input("Hold to talk", key=f"chat_record_{take}")
    else:
        said = st.file_uploader("A spoken clip", type=None, key=f"chat_upload_{take}")
    if said is not None:
        with user_errors():
            data = said.getvalue()
            heard = transcript_of(data, getattr(said, "name", "recording"), model, whisper_language, "transcribe")
            line = language_line(heard)
            if line:
                st.caption(line)
            # the box holds what was heard with this model and language: a new transcript replaces it
            follow(f"chat_edit_{take}", (hashlib.sha1(data).hexdigest(), model, whisper_language), heard.text)
            text = st.text_area("Transcript (edit before sending)", key=f"chat_edit_{take}")
            if st.button("Send", type="primary", icon=":material/send:", disabled=not text.strip()):
                if send(text, endpoint, language, spoken, into=log):
                    st.session_state[TAKE] = take + 1  # sent: the next turn starts from an empty recorder
                    st.rerun()
elif mode == "Type":
    typed = st.chat_input("Type a message")  # st.chat_input empties itself once sent
    if typed:
        send(typed, endpoint, language, spoken, into=log)
else:
    with user_errors():
        hands_free = live_session("chat_session", model, whisper_language, "transcribe")
        streamer = microphone("chat-mic", hands_free)
        playing = bool(streamer and streamer.state.playing)  # a start or stop reruns the whole page
        listening = playing or hands_free.working

        def send_finals() -> None:
            handled = st.session_state.setdefault("chat_handled", 0)
            sent = False
            for utterance in hands_free.take_finals(handled):
                st.session_state["chat_handled"] += 1
                if utterance.text:
                    # a fragment writes only inside itself: send here, then redraw the history above
                    sent = send(utterance.text, endpoint, language, spoken) or sent
            if sent or (listening and not playing and not hands_free.working):
                st.rerun()  # a reply to show, or the microphone stopped: the polling ends with this rerun

        # polled every second while the microphone streams or its last words are transcribed, never otherwise
        st.fragment(run_every=1 if listening else None)(send_finals)()
