"""The live microphone widget: streamlit-webrtc sends audio frames to a LiveSession kept in session state.

One LiveSession per browser tab and purpose (live transcript, hands-free conversation); its `snapshot()` is what
the page's fragments poll.
"""

from __future__ import annotations

import streamlit as st
from streamlit_webrtc import WebRtcMode, webrtc_streamer
from streamlit_webrtc.sink import CallbackSinkTrack

from app.models import ice_servers, transcriber
from core.live import LiveSession


def live_session(key: str, model: str, language: str | None, task: str) -> LiveSession:
    """The tab's session for `key`; a new one when the model, language or task changes."""
    signature = (model, language, task)
    state = st.session_state.get(key)
    if state is None or state[0] != signature:
        engine = transcriber(model)
        session = LiveSession(
            lambda audio: engine.text(audio, language=language, task=task), max_utterance_s=engine.window / 16000
        )
        st.session_state[key] = (signature, session)
    return st.session_state[key][1]


def microphone(key: str, session: LiveSession):
    """The WebRTC widget (send-only); each audio frame goes to `session` on aiortc's loop (no Streamlit there)."""
    sinks = st.session_state.setdefault("_audio_sinks", {})
    if sinks.get(key, (None,))[0] is not session:

        def on_audio(frame) -> None:
            samples = frame.to_ndarray()
            channels = len(frame.layout.channels)
            # packed formats arrive as (1, samples × channels), planar ones as (channels, samples)
            samples = samples.reshape(-1, channels) if samples.shape[0] == 1 else samples.T
            if samples.dtype.kind == "i":
                samples = samples.astype("float32") / 32768.0
            session.push(samples, frame.sample_rate)

        sinks[key] = (session, CallbackSinkTrack(on_audio, kind="audio"))
    try:
        return webrtc_streamer(
            key=key,
            mode=WebRtcMode.SENDONLY,
            sink_audio_track=sinks[key][1],
            rtc_configuration={"iceServers": ice_servers()},
            media_stream_constraints={"audio": True, "video": False},
        )
    except AttributeError:
        # streamlit-webrtc needs a running Streamlit server's session manager (absent in AppTest and bare mode)
        st.info("The live microphone needs the app served by `streamlit run` (scripts/run.sh).")
        return None
