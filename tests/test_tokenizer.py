"""The real multilingual Whisper tokenizer, built offline from openai-whisper's tiktoken file."""

from transformers import WhisperTokenizer

from core.models.hf_folders import TOKENIZER_ASSETS


def test_known_ids_and_norwegian_prefix_round_trip():
    tok = WhisperTokenizer.from_pretrained(str(TOKENIZER_ASSETS))
    assert len(tok) == 51865
    ids = {
        t: tok.convert_tokens_to_ids(t)
        for t in ("<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>")
    }
    assert ids == {
        "<|endoftext|>": 50257,
        "<|startoftranscript|>": 50258,
        "<|en|>": 50259,
        "<|transcribe|>": 50359,
        "<|notimestamps|>": 50363,
    }
    tok.set_prefix_tokens(language="no", task="transcribe", predict_timestamps=False)
    text = "Blåbærsyltetøy er godt, æøå ÆØÅ"
    encoded = tok(text).input_ids
    assert encoded[:4] == [50258, tok.convert_tokens_to_ids("<|no|>"), 50359, 50363]
    assert encoded[-1] == 50257
    assert tok.decode(encoded, skip_special_tokens=True) == text
    assert tok.pad_token_id == 50257
