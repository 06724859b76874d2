"""Audio: any file or bytes → 16 kHz mono float32 (decode), log-mel features (melspec), speech regions (vad, with
the Silero detector in silero)."""

from core import lazy_api

__getattr__, __all__ = lazy_api(
    __name__,
    {
        "SAMPLE_RATE": "constants",
        "AUDIO_EXTENSIONS": "decode",
        "load_audio": "decode",
        "log_mel": "melspec",
        "WINDOW_SECONDS": "constants",
    },
)
