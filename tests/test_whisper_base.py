"""The installed whisper-base: reassembled from its packages, checksummed, converted to transformers, and proven
equal to CTranslate2's own run of the original file; bad installs refused in one line."""

import dataclasses
import json

import ctranslate2
import numpy as np
import pytest
import torch
from helpers import make_audio, run_cli

from core.audio import load_audio, log_mel
from core.errors import StudioError
from core.models import load_model, resolve_model
from core.models.conversion import split_rows
from core.models.ct2_file import read_ct2_model
from core.models.installed import INSTALLED, MARKER, install_ct2, install_transformers
from core.speech import Transcriber
from core.workspace import Workspace

pytestmark = pytest.mark.slow  # the real whisper-base

SENTENCES = {
    "en": [
        "the quick brown fox jumps over the lazy dog",
        "please call me back when you get home",
        "the weather will be sunny tomorrow morning",
        "she bought three apples and a loaf of bread",
        "our train leaves from platform number seven",
        "he likes to read books in the evening",
        "the meeting has been moved to friday",
        "turn left at the next traffic light",
        "we need more water for the garden",
        "my brother works at the hospital",
    ],
    "no": [
        "jeg liker å gå tur i skogen",
        "hva koster billetten til bergen",
        "været er fint i dag",
        "vi spiser middag klokken fem",
        "kan du hjelpe meg med dette",
        "toget går fra spor to",
        "hun leser en bok om kvelden",
        "det regner mye i oslo",
        "barna leker i hagen",
        "jeg har kjøpt ny sykkel",
    ],
}
VOICES = {"en": "en-us", "no": "nb"}
# Float32 on both sides over the same float16 weights: the first step's logits agree to about 4e-5 (measured);
# a mis-split projection moves them by whole units.
LOGIT_TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def spoken(tmp_path_factory, whisper_base):
    folder = tmp_path_factory.mktemp("sentences")
    clips = {
        lang: [load_audio(make_audio(folder / f"{lang}{i}.wav", s, VOICES[lang])) for i, s in enumerate(texts)]
        for lang, texts in SENTENCES.items()
    }
    _, processor = load_model(str(whisper_base), Workspace(whisper_base.parent.parent))
    return {lang: log_mel(c, processor.feature_extractor) for lang, c in clips.items()}, processor


def test_install_is_verified_and_converted_with_whisper_base_shape(whisper_base):
    config = json.loads((whisper_base / "config.json").read_text())
    assert (config["d_model"], config["encoder_layers"], config["decoder_layers"]) == (512, 6, 6)
    assert (config["encoder_attention_heads"], config["num_mel_bins"], config["vocab_size"]) == (8, 80, 51865)
    generation = json.loads((whisper_base / "generation_config.json").read_text())
    assert len(generation["lang_to_id"]) == 99 and generation["lang_to_id"]["<|no|>"] == 50288
    assert generation["task_to_id"] == {"translate": 50358, "transcribe": 50359}
    processor = json.loads((whisper_base / "processor_config.json").read_text())["feature_extractor"]
    assert (processor["feature_size"], processor["chunk_length"]) == (80, 30)
    twin = whisper_base.parent / "whisper-base-ct2"
    marker = json.loads((twin / MARKER).read_text())
    assert marker["sha256"] == INSTALLED["whisper-base"].sha256
    assert (twin / "model.bin").stat().st_size == INSTALLED["whisper-base"].size


def _ct2_first_logits_and_ids(engine, features, prompt):
    results = engine.generate(
        ctranslate2.StorageView.from_array(np.ascontiguousarray(features)),
        [prompt] * len(features),
        beam_size=1,
        max_length=64,
        return_logits_vocab=True,
    )
    return np.array([r.logits[0][0] for r in results]), [r.sequences_ids[0] for r in results]


@torch.inference_mode()
def _hf_first_logits(network, features, prompt):
    inputs = torch.from_numpy(features)
    return network(input_features=inputs, decoder_input_ids=torch.tensor([prompt] * len(features))).logits[:, -1]


def test_converted_model_equals_ctranslate2_on_20_sentences_in_two_languages(whisper_base, spoken):
    features, processor = spoken
    tokenizer = processor.tokenizer
    network, _ = load_model(str(whisper_base), Workspace(whisper_base.parent.parent))
    network.eval()
    engine = ctranslate2.models.Whisper(str(whisper_base.parent / "whisper-base-ct2"), compute_type="float32")
    for lang, batch in features.items():
        prompt = tokenizer.convert_tokens_to_ids(
            ["<|startoftranscript|>", f"<|{lang}|>", "<|transcribe|>", "<|notimestamps|>"]
        )
        ct2_logits, ct2_ids = _ct2_first_logits_and_ids(engine, batch, prompt)
        ours = _hf_first_logits(network, batch, prompt).numpy()
        allowed = ct2_logits > -1e30  # CTranslate2 reports suppressed tokens as -inf
        assert allowed.sum(axis=1).min() > 51000
        assert np.abs(ct2_logits[allowed] - ours[allowed]).max() < LOGIT_TOLERANCE
        with torch.inference_mode():
            generated = network.generate(torch.from_numpy(batch), language=lang, task="transcribe", max_length=64)
        end = tokenizer.convert_tokens_to_ids("<|endoftext|>")
        our_ids = [[t for t in row if t < end] for row in generated.tolist()]
        assert our_ids == ct2_ids, [tokenizer.decode(i) for i in our_ids]


def test_a_wrong_split_of_one_projection_is_caught(whisper_base, spoken):
    features, processor = spoken
    network, _ = load_model(str(whisper_base), Workspace(whisper_base.parent.parent))
    network.eval()
    prompt = processor.tokenizer.convert_tokens_to_ids(
        ["<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>"]
    )
    batch = features["en"][:4]
    right = _hf_first_logits(network, batch, prompt)
    # Layer 3's cross-attention with k and v taken in the wrong order from the fused linear_1
    ct2 = read_ct2_model(whisper_base.parent / "whisper-base-ct2" / "model.bin")
    v_first, k_second = split_rows(np.asarray(ct2.get("decoder/layer_3/attention/linear_1/weight"), np.float32), 2)
    attention = network.model.decoder.layers[3].encoder_attn
    with torch.no_grad():
        attention.k_proj.weight.copy_(torch.from_numpy(k_second))
        attention.v_proj.weight.copy_(torch.from_numpy(v_first))
    wrong = _hf_first_logits(network, batch, prompt)
    assert (wrong - right).abs().max().item() > 100 * LOGIT_TOLERANCE


def test_installed_model_transcribes_real_words_on_ctranslate2_int8(tmp_path, whisper_base):
    transcriber = Transcriber("whisper-base", Workspace(whisper_base.parent.parent), language="en")
    assert type(transcriber.model).__name__ == "CTranslate2Whisper"
    path = make_audio(tmp_path / "fox.wav", "the quick brown fox jumps over the lazy dog", "en-us")
    words = " ".join(s.text for s in transcriber.transcribe(path)).lower()
    assert {"quick", "brown", "fox", "lazy", "dog"} <= set(words.replace(".", " ").replace(",", " ").split()), words


def test_openai_whisper_base_offline_resolves_to_the_installed_copy(tmp_path, whisper_base, session_workspace):
    assert resolve_model("openai/whisper-base", session_workspace) == str(whisper_base)
    result = run_cli("models", home=session_workspace.home)
    assert result.returncode == 0 and f"transformers: {whisper_base}" in result.stdout
    path = make_audio(tmp_path / "call.wav", "please call me back when you get home", "en-us")
    args = ("transcribe", str(path), "--model", "openai/whisper-base", "--language", "en")
    result = run_cli(*args, home=session_workspace.home)
    assert result.returncode == 0, result.stderr
    assert "note: openai/whisper-base: the Hub cannot be reached; using the installed copy" in result.stderr
    assert "call me back" in result.stdout.lower()


def test_bad_installs_are_refused_in_one_line_and_leave_no_folder(tmp_path):
    workspace = Workspace.open(tmp_path / "ws")
    item = INSTALLED["whisper-base"]
    cases = [
        (dataclasses.replace(item, sha256="0" * 64), "expected 145,217,532 bytes and 0000000000000000"),
        (dataclasses.replace(item, packages=(item.packages[0], ("gone-part2", "gone_part2"))), "package gone-part2"),
        (dataclasses.replace(item, parts=("model.bin.part1", "model.bin.part9")), "a partial install"),
        (dataclasses.replace(item, size=10**16), "not enough disk space"),
    ]
    for broken, message in cases:
        with pytest.raises(StudioError, match=message) as err:
            install_transformers(workspace, broken)
        assert "\n" not in str(err.value)
        leftovers = list(workspace.models.glob("*")) if workspace.models.is_dir() else []
        assert leftovers == [], leftovers
    install_ct2(workspace, item)  # the real packages still install afterwards
    assert (workspace.models / "whisper-base-ct2" / MARKER).is_file()


def test_a_damaged_model_file_gets_one_clear_line(tmp_path, whisper_base):
    original = (whisper_base.parent / "whisper-base-ct2" / "model.bin").read_bytes()
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(original[: len(original) // 2])
    with pytest.raises(StudioError, match="ends early"):
        read_ct2_model(truncated)
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\x07\x00\x00\x00 not a model")
    with pytest.raises(StudioError, match="binary version 7"):
        read_ct2_model(garbage)
