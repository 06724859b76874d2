"""The live microphone widget: streamlit-webrtc sends audio frames to a LiveSession kept in session state.

One LiveSession per browser tab and purpose (live transcript, hands-free conversation); its `snapshot()` is what
the page's fragments poll. A session replaced by a change of model, language or task is closed, so its worker
thread ends and the model cache can let its model go.
"""

from __future__ import annotations

import streamlit as st
from streamlit import runtime
from streamlit_webrtc import WebRtcMode, webrtc_streamer
from streamlit_webrtc.sink import CallbackSinkTrack

from app.model_cache import ice_servers, transcriber
from core.audio import SAMPLE_RATE
from core.live import LiveSession, frame_samples


def live_session(key: str, model: str, language: str | None, task: str) -> LiveSession:
    """The tab's session for `key`; a new one (the old one closed) when the model, language or task changes."""
    signature = (model, language, task)
    state = st.session_state.get(key)
    if state is None or state[0] != signature:
        if state is not None:
            state[1].close()
        engine = transcriber(model)
        session = LiveSession(
            lambda audio: engine.text(audio, language=language, task=task),
            max_utterance_s=engine.window / SAMPLE_RATE,
        )
        st.session_state[key] = (signature, session)
    return st.session_state[key][1]


def microphone(key: str, session: LiveSession):
    """The WebRTC widget (send-only); each audio frame goes to `session` on aiortc's loop (no Streamlit there)."""
    if not (runtime.exists() and type(runtime.get_instance()) is runtime.Runtime):
        # streamlit-webrtc needs a real Streamlit server: none in bare mode; AppTest has a Mock(spec=Runtime),
        # which isinstance() would accept
        st.info("The live microphone needs the app served by `streamlit run` (scripts/run.sh).")
        return None
    sinks = st.session_state.setdefault("_audio_sinks", {})
    if sinks.get(key, (None,))[0] is not session:
        sinks[key] = (session, CallbackSinkTrack(lambda frame: session.push(*frame_samples(frame)), kind="audio"))
    return webrtc_streamer(
        key=key,
        mode=WebRtcMode.SENDONLY,
        sink_audio_track=sinks[key][1],
        rtc_configuration={"iceServers": ice_servers()},
        media_stream_constraints={"audio": True, "video": False},
    )
