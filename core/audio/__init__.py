"""Audio: any file or bytes → 16 kHz mono float32 (decode), log-mel features (melspec), speech regions (vad, with
the Silero detector in silero)."""

from core import lazy_api

__getattr__, __all__ = lazy_api(
    __name__,
    {
        "SAMPLE_RATE": "constants",
        "FRAMES_PER_SECOND": "constants",
        "AUDIO_EXTENSIONS": "decode",
        "load_audio": "decode",
        "audio_files_in": "decode",
        "audio_duration": "decode",
        "audio_pieces": "decode",
        "finite_audio_problem": "decode",
        "log_mel": "melspec",
        "WINDOW_SECONDS": "constants",
        "ENCODER_POSITIONS_PER_SECOND": "constants",
        "WINDOW_POSITIONS": "constants",
        "MAX_TARGET_POSITIONS": "constants",
        "FRAME": "vad",
        "speech_windows": "vad",
        "speech_regions": "vad",
        "DETECTORS": "vad",
        "SileroStream": "silero",
        "speech_probabilities": "silero",
        "probe_clips": "probes",
    },
)
