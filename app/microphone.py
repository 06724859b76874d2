"""The live microphone widget: streamlit-webrtc sends audio frames to a LiveSession kept in session state.

One LiveSession per browser tab and purpose (live transcript, hands-free conversation); its `snapshot()` is what
the page's fragments poll. A session replaced by a change of model, language or task is closed, so its worker
thread ends and the model cache can let its model go.
"""

from __future__ import annotations

import aioice.ice
import streamlit as st
from streamlit import runtime
from streamlit_webrtc import WebRtcMode, webrtc_streamer
from streamlit_webrtc.sink import CallbackSinkTrack

from app.model_cache import ice_servers, transcriber
from core.audio import SAMPLE_RATE
from core.speech import LIVE, LiveSession, frame_samples

# aioice offers the server's host addresses as WebRTC candidates and leaves out loopback, so on a machine whose only
# interface is loopback (offline, or a sandbox) the server offers nothing and no browser can connect. There it
# offers 127.0.0.1, which a browser that allows loopback (Chrome's --allow-loopback-in-peer-connection) can use;
# machines with any other interface are unchanged.
_host_addresses = getattr(aioice.ice.get_host_addresses, "original", aioice.ice.get_host_addresses)


def _host_addresses_or_loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    return _host_addresses(use_ipv4, use_ipv6) or (["127.0.0.1"] if use_ipv4 else [])


_host_addresses_or_loopback.original = _host_addresses  # Streamlit may import this module again: patch once
aioice.ice.get_host_addresses = _host_addresses_or_loopback

LOOPBACK_ONLY_WARNING = (
    "This machine has no network interface besides loopback, and browsers do not use loopback for WebRTC, so "
    "the live microphone cannot connect. Bring up any network interface (no internet needed) or start Chrome "
    "with --allow-loopback-in-peer-connection; recording a clip (File or recording, push to talk) works as is."
)


def loopback_only() -> bool:
    """True when the server has no address a browser's WebRTC would connect to by default."""
    return not _host_addresses(True, True)


def live_session(key: str, model: str, language: str | None, task: str) -> LiveSession:
    """The tab's session for `key`; a new one (the old one closed) when the model, language or task changes."""
    signature = (model, language, task)
    state = st.session_state.get(key)
    if state is None or state[0] != signature:
        if state is not None:
            state[1].close()
        engine = transcriber(model)
        session = LiveSession(
            lambda audio: engine.text(audio, language=language, task=task, options=LIVE),
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
    if loopback_only():
        st.warning(LOOPBACK_ONLY_WARNING, icon=":material/wifi_off:")
    sinks = st.session_state.setdefault("_audio_sinks", {})
    if sinks.get(key, (None,))[0] is not session:
        sinks[key] = (session, CallbackSinkTrack(lambda frame: session.push(*frame_samples(frame)), kind="audio"))
    streamer = webrtc_streamer(
        key=key,
        mode=WebRtcMode.SENDONLY,
        sink_audio_track=sinks[key][1],
        rtc_configuration={"iceServers": ice_servers()},
        media_stream_constraints={"audio": True, "video": False},
    )
    if not (streamer and streamer.state.playing):
        # stopped (Stop, or a dropped connection) mid-sentence: no silence will ever end that utterance, so it ends
        # here and is transcribed, instead of 'speaking…' forever (a start or stop reruns the page)
        session.flush()
    return streamer
