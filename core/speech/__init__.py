"""Speech: transcription of files and windows (inference) by one decoding policy (decoding) on two engines (engines),
with word timestamps (words), and its formats (transcripts), the live microphone (live),
conversation mode with an LLM (conversation, spoken_reply), and a model served over OpenAI's audio API (server,
openai_api)."""

from core import lazy_api

__getattr__, __all__ = lazy_api(
    __name__,
    {
        "Transcriber": "inference",
        "EngineOptions": "inference",
        "DecodingOptions": "decoding",
        "WindowDecoder": "decoding",
        "FORMATS": "transcripts",
        "WRITERS": "transcripts",
        "Transcript": "transcripts",
        "language_line": "transcripts",
        "language_guesses": "transcripts",
        "LiveSession": "live",
        "SILENCE_END_S": "live",
        "frame_samples": "live",
        "Conversation": "conversation",
        "Turn": "conversation",
        "Endpoint": "conversation",
        "DEFAULT_SYSTEM_PROMPT": "conversation",
        "stream_reply": "conversation",
        "speak": "spoken_reply",
        "serve_command": "server",
        "file_options": "decoding",
        "LIVE": "decoding",
        "GREEDY": "decoding",
        "is_toy": "decoding",
        "SURE_LANGUAGE": "transcripts",
    },
)
