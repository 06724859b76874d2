"""What a fine-tune must not unlearn, prepared into its labels: timestamps (a share of the training rows labelled
`<|0.00|> text<|1.84|>`, segment times from multi-sentence synthetic clips or a `segments` column, else the clip) and
saying nothing (generated no-speech rows with Whisper's empty transcript), on real espeak-ng speech and the real
tokenizer."""

import json

import numpy as np
import pytest
import torch

from core.audio import load_audio
from core.data import FolderSource, PrepareOptions, SynthSpec, prepare_features, synthesize_dataset
from core.data.artifact import open_artifact
from core.data.labels import LabelSegment, label_segments, parse_segments, timestamped_label_ids
from core.errors import StudioError
from core.languages import get_language
from core.models.hf_folders import whisper_tokenizer
from core.training.feature_sets import FeatureDataset, SpeechCollator

NB = get_language("nb")


@pytest.fixture(scope="module")
def tokenizer():
    tokenizer = whisper_tokenizer()
    tokenizer.set_prefix_tokens(language="norwegian", task="transcribe", predict_timestamps=False)
    return tokenizer


def test_timestamped_labels_round_trip(tokenizer):
    segments = [LabelSegment(0.0, 1.843, "Hei på deg."), LabelSegment(2.3, 3.011, "Ha det bra!")]
    ids = timestamped_label_ids(tokenizer, segments)
    tokens = tokenizer.convert_ids_to_tokens(ids)
    assert tokens[:4] == ["<|startoftranscript|>", "<|no|>", "<|transcribe|>", "<|0.00|>"]
    assert "<|notimestamps|>" not in tokens and tokens[-2:] == ["<|3.02|>", "<|endoftext|>"]  # 3.011 s: the 0.02 grid
    assert label_segments(tokenizer, ids) == [
        LabelSegment(0.0, 1.84, "Hei på deg."),
        LabelSegment(2.3, 3.02, "Ha det bra!"),
    ]
    # evaluation reads text only: the times are special tokens, dropped before WER
    assert tokenizer.decode(ids, skip_special_tokens=True).strip() == "Hei på deg. Ha det bra!"


def test_a_segments_column_is_read_or_refused_with_its_row():
    assert parse_segments('[[0, 1.5, "a"], {"start": 1.5, "end": 2, "text": "b"}]', "m row 2") == (
        (0.0, 1.5, "a"),
        (1.5, 2.0, "b"),
    )
    assert parse_segments(None, "m row 2") == ()
    with pytest.raises(StudioError, match="m row 3: segments must be a list"):
        parse_segments("[[0, 1]]", "m row 3")
    with pytest.raises(StudioError, match="m row 4: a segment ends before it starts"):
        parse_segments([[2, 1, "x"]], "m row 4")


def test_no_speech_and_timestamped_rows_are_prepared_into_train_only(synth_folder, workspace, tokenizer):
    options = PrepareOptions(no_speech_fraction=0.2, timestamp_fraction=0.5)
    artifact = prepare_features(FolderSource(synth_folder), NB, "demo", "nb-marked", workspace, options)
    train = artifact.manifest.splits["train"]
    table = artifact.read_split("train")
    ids, texts = table.column("id").to_pylist(), table.column("text").to_pylist()
    labels = table.column("labels").to_pylist()
    silent = [i for i, name in enumerate(ids) if name.startswith("no-speech-")]
    real = len(ids) - len(silent)
    # a stated share of the training rows: n / (real + n) = 0.2, spread through the split, every kind made
    assert train.no_speech["rows"] == len(silent) == real // 4 and train.rows == len(ids)
    assert set(train.no_speech["kinds"]) == {"silence", "white noise", "pink noise", "hum"}
    assert silent[0] < real / 2
    empty = tokenizer("").input_ids  # Whisper's empty transcript: the prefix, then <|endoftext|>
    assert all(labels[i] == empty and texts[i] == "" for i in silent)
    no_timestamps = tokenizer.convert_tokens_to_ids("<|notimestamps|>")
    timed = [i for i, seq in enumerate(labels) if i not in silent and no_timestamps not in seq]
    assert train.timestamped == len(timed) and 0 < len(timed) < real
    durations = table.column("duration").to_pylist()
    for i in timed:  # no segment times in a pairs folder: one segment over the clip
        (segment,) = label_segments(tokenizer, labels[i])
        assert segment.start == 0 and segment.end == pytest.approx(durations[i], abs=0.011) and segment.text == texts[i]
    for split in ("validation", "test"):  # evaluation splits: the user's speech, plain labels
        rows = artifact.read_split(split)
        assert not any(i.startswith("no-speech-") for i in rows.column("id").to_pylist())
        assert all(no_timestamps in seq for seq in rows.column("labels").to_pylist())
    # the collator and the model take both label formats in one batch
    model_rows = FeatureDataset(open_artifact(workspace, "nb-marked"), "train")
    batch = SpeechCollator(tokenizer.convert_tokens_to_ids("<|startoftranscript|>"))(
        [model_rows[i] for i in (silent[0], timed[0], next(i for i in range(len(ids)) if i not in timed + silent))]
    )
    from transformers import WhisperForConditionalGeneration

    model = WhisperForConditionalGeneration.from_pretrained(workspace.models / "demo")
    assert torch.isfinite(model(**batch).loss)


def test_multi_sentence_clips_know_their_segment_times(tmp_path, workspace, tokenizer):
    # one word a text: two texts and a pause fit the demo model's 3 s window
    spec = SynthSpec(language="nb", n=4, seed=3, kind="words", vocabulary_size=20, max_words=1, sentences_per_clip=2)
    spec = SynthSpec(**{**spec.__dict__, "test_fraction": 0.25, "validation_fraction": 0.25})
    folder = synthesize_dataset(NB, tmp_path / spec.folder_name(), spec)
    assert folder.name.endswith("-x2")
    rows = [json.loads(line) for line in (folder / "train" / "metadata.jsonl").read_text().splitlines()]
    row = rows[0]
    (a_start, a_end, a_text), (b_start, b_end, b_text) = row["segments"]
    assert row["text"] == f"{a_text} {b_text}" and a_start == 0 and a_end < b_start
    samples = load_audio(folder / "train" / row["file_name"])  # 16 kHz
    pause = samples[int(a_end * 16000) + 80 : int(b_start * 16000) - 80]
    assert len(pause) and np.abs(pause).max() < 0.01  # the pause between the texts is silent
    assert np.abs(samples[int(a_start * 16000) : int(a_end * 16000)]).max() > 0.05  # a text's span is speech
    assert len(samples) / 16000 == pytest.approx(b_end, abs=0.01)
    options = PrepareOptions(timestamp_fraction=1.0, validation_fraction=0)
    artifact = prepare_features(FolderSource(folder), NB, "demo", "nb-timed", workspace, options)
    table = artifact.read_split("train")
    first = table.column("id").to_pylist().index(f"train/{row['file_name'].rsplit('.', 1)[0]}")
    segments = label_segments(tokenizer, table.column("labels")[first].as_py())
    # the metadata's times on Whisper's 0.02 s grid
    times = [t for s in segments for t in (s.start, s.end)]
    assert times == pytest.approx([a_start, a_end, b_start, b_end], abs=0.011)
    assert [s.text for s in segments] == [a_text, b_text]
