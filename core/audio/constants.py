"""Whisper's numbers, each once, with its unit (as openai/whisper's audio.py keeps them).

No imports: the training config and the command line read these without paying for numpy, PyAV or torch.
"""

SAMPLE_RATE = 16000  # Hz: what every Whisper feature extractor expects
N_FFT = 400  # samples per STFT window: 25 ms
HOP_LENGTH = 160  # samples between mel frames: 10 ms, so 100 frames per second
FRAMES_PER_SECOND = SAMPLE_RATE // HOP_LENGTH  # 100 mel frames; the encoder's stride-2 convolution halves them
ENCODER_POSITIONS_PER_SECOND = FRAMES_PER_SECOND // 2  # 50 encoder positions (audio tokens) a second
WINDOW_SECONDS = 30  # every openai/whisper-* model listens to 30 s at a time
WINDOW_POSITIONS = WINDOW_SECONDS * ENCODER_POSITIONS_PER_SECOND  # 1500 encoder positions in a 30 s window
MAX_TARGET_POSITIONS = 448  # decoder positions of every openai/whisper-* checkpoint: the longest label or output
INT16_SCALE = 32767  # 16-bit PCM full scale: float ±1.0 ↔ int16 ±32767 (stored test audio, WebRTC frames)
# transcript tokens (text, not audio positions) a second of audio may give: more than any language's speech needs
# (English ~4, Norwegian ~6 tokens a second), so a window that loops is cut off
TEXT_TOKENS_PER_SECOND_CAP = 10
TOKEN_CAP_SLACK = 16  # tokens beyond the per-second cap: a clip of one or two words still has room to end


def text_token_cap(seconds: float) -> int:
    """The most text tokens a transcript of `seconds` of audio may take: a longer one is a loop, cut off where its
    speech ends; never more than half the decoder's positions (openai/whisper's sample_len, CTranslate2's limit)."""
    return min(MAX_TARGET_POSITIONS // 2, int(TEXT_TOKENS_PER_SECOND_CAP * seconds) + TOKEN_CAP_SLACK)
