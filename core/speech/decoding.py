"""How a window is decoded: the one policy both engines (CTranslate2 and transformers) follow.

`DecodingOptions` is the contract the CLI's `transcribe` flags, the Transcribe page, the `serve` endpoint and
`Transcriber.transcribe_file` share. Its defaults are those of openai/whisper's `transcribe` and faster-whisper
(beam 5 for files, temperature fallback 0 → 0.2 … 1.0 on a compression ratio above 2.4 or an average
log-probability below −1.0, silence when the no-speech probability is above 0.6 with a low log-probability).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.options import option_help

TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclass(frozen=True)
class DecodingOptions:
    beam_size: int = field(default=5, metadata=option_help("beams per window (1 = greedy, what the microphone uses)"))
    temperatures: tuple[float, ...] = field(
        default=TEMPERATURES, metadata=option_help("temperature ladder: the next is tried when a window fails")
    )
    compression_ratio_threshold: float | None = field(
        default=2.4, metadata=option_help("retry a window whose text compresses more than this (a loop)")
    )
    log_prob_threshold: float | None = field(
        default=-1.0, metadata=option_help("retry a window whose average token log-probability is below this")
    )
    no_speech_threshold: float | None = field(
        default=0.6, metadata=option_help("a window this likely to be silence (with a low log-probability) is skipped")
    )
    condition_on_previous_text: bool = field(
        default=False, metadata=option_help("give each window the previous window's text as its prompt")
    )
    initial_prompt: str | None = field(
        default=None, metadata=option_help("text that comes before the audio: names, spelling, style")
    )
    hotwords: str | None = field(default=None, metadata=option_help("words to favour (names, jargon), space-separated"))
    word_timestamps: bool = field(default=False, metadata=option_help("time every word (cross-attention alignment)"))
    vad: str = field(default="silero", metadata=option_help("voice detector: silero (neural) or energy"))
