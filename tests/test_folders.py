"""Local folders in the four layouts people have, detected automatically; bad folders get clear messages."""

import json
import shutil

import pytest
from helpers import make_audio

from core.data import FolderSource
from core.errors import StudioError


def _clips(synth_folder, n=6):
    """(wav path, transcript) pairs from the session's espeak-ng set."""
    wavs = sorted((synth_folder / "train").glob("*.wav"))[:n]
    return [(w, w.with_suffix(".txt").read_text().strip()) for w in wavs]


def test_pairs_in_one_folder_hold_out_a_stable_test_split(tmp_path, synth_folder):
    root = tmp_path / "flat"
    root.mkdir()
    for wav, text in _clips(synth_folder, 12):
        shutil.copy(wav, root / wav.name)
        (root / wav.name).with_suffix(".txt").write_text(text)
    (root / "orphan.wav").write_bytes(_clips(synth_folder, 1)[0][0].read_bytes())  # no transcript
    source = FolderSource(root)
    assert source.layout == "pairs"
    train, test = list(source.examples("train")), list(source.examples("test"))
    assert len(train) + len(test) == 12 and test  # orphan skipped, at least one held out
    assert {e.id for e in test} == {e.id for e in FolderSource(root).examples("test")}  # stable
    assert all(e.text for e in train)


def test_pairs_with_split_subfolders(synth_folder):
    source = FolderSource(synth_folder)
    assert source.layout == "pairs" and source.splits() == ["train", "validation", "test"]
    example = next(source.examples("test"))
    assert example.id.startswith("test/") and example.load_audio().size > 0


def test_audiofolder_csv_and_jsonl(tmp_path, synth_folder):
    root = tmp_path / "af"
    for split, ext in (("train", "csv"), ("test", "jsonl")):
        (root / split).mkdir(parents=True)
        rows = []
        for wav, text in _clips(synth_folder, 3):
            shutil.copy(wav, root / split / wav.name)
            rows.append({"file_name": wav.name, "transcription": text})
        if ext == "csv":
            lines = ["file_name,transcription"] + [f'{r["file_name"]},"{r["transcription"]}"' for r in rows]
            (root / split / "metadata.csv").write_text("\n".join(lines))
        else:
            (root / split / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    source = FolderSource(root)
    assert source.layout == "audiofolder" and source.splits() == ["train", "test"]
    assert [e.text for e in source.examples("test")] == [t for _, t in _clips(synth_folder, 3)]


def test_common_voice_release(tmp_path):
    root = tmp_path / "cv-corpus-17.0" / "nb-NO"
    (root / "clips").mkdir(parents=True)
    header = "client_id\tpath\tsentence_id\tsentence\tsentence_domain\tup_votes\tdown_votes\tage\tgender\taccents"
    for split, words in (("train", ["hei", "takk", "god morgen"]), ("dev", ["ja"]), ("test", ["nei", "hade"])):
        lines = [header]
        for i, text in enumerate(words):
            name = f"common_voice_nb-NO_{split}{i}.mp3"
            make_audio(root / "clips" / name, text)
            lines.append(f"abc\t{name}\tsid\t{text}\t\t2\t0\t\t\t")
        (root / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    (root / "validated.tsv").write_text(header + "\n")
    source = FolderSource(root)
    assert source.layout == "common_voice"
    assert source.splits() == ["train", "validation", "test"]
    assert [e.text for e in source.examples("test")] == ["nei", "hade"]
    assert next(source.examples("train")).load_audio().size > 8000


def test_fleurs_language_folder(tmp_path):
    root = tmp_path / "nb_no"
    for split, texts in (("train", ["en to tre", "fire fem"]), ("dev", ["seks"]), ("test", ["sju åtte"])):
        (root / "audio" / split).mkdir(parents=True)
        rows = []
        for i, text in enumerate(texts):
            name = f"{split}{i}.wav"
            make_audio(root / "audio" / split / name, text)
            rows.append(f"{i}\t{name}\t{text.capitalize()}.\t{text}\t{'|'.join(text)}\t16000\tFEMALE")
        (root / f"{split}.tsv").write_text("\n".join(rows) + "\n")
    source = FolderSource(root)
    assert source.layout == "fleurs"
    assert [e.text for e in source.examples("test")] == ["sju åtte"]
    assert [e.text for e in FolderSource(root, text_column="raw_transcription").examples("test")] == ["Sju åtte."]
    assert next(source.examples("train")).duration == 1.0


def test_bad_folders_say_what_was_expected(tmp_path, synth_folder):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(StudioError, match="empty.*expected one of"):
        FolderSource(empty)
    with pytest.raises(StudioError, match="no such folder"):
        FolderSource(tmp_path / "missing")

    root = tmp_path / "af"
    root.mkdir()
    shutil.copy(_clips(synth_folder, 1)[0][0], root / "a.wav")
    (root / "metadata.csv").write_text("file_name,words\na.wav,hei\n")
    with pytest.raises(StudioError) as err:
        FolderSource(root)
    assert "metadata.csv" in str(err.value) and "transcription" in str(err.value) and "words" in str(err.value)

    (root / "metadata.csv").write_text("file_name,text\na.wav,hei\ngone.wav,borte\n")
    with pytest.raises(StudioError, match="gone.wav is listed but missing"):
        FolderSource(root)


def test_metadata_paths_that_leave_the_folder_are_refused_with_the_row(tmp_path, synth_folder):
    outside = tmp_path / "elsewhere.wav"
    shutil.copy(_clips(synth_folder, 1)[0][0], outside)
    root = tmp_path / "inside"
    root.mkdir()
    shutil.copy(_clips(synth_folder, 1)[0][0], root / "ok.wav")
    for listed in ("../elsewhere.wav", str(outside), "sub/../../elsewhere.wav"):
        (root / "metadata.csv").write_text(f"file_name,text\nok.wav,hei\n{listed},borte\n")
        with pytest.raises(StudioError) as err:
            FolderSource(root)
        assert "metadata.csv row 3" in str(err.value) and "points outside the dataset folder" in str(err.value)


def test_transcripts_in_other_encodings_are_read_and_noted(tmp_path, synth_folder):
    root = tmp_path / "encodings"
    root.mkdir()
    texts = {
        "latin": ("blåbærsyltetøy på brødskiva", "latin-1"),
        "bom": ("hei på deg", "utf-8-sig"),
        "wide": ("god morgen, søster", "utf-16"),
    }
    for (name, (text, encoding)), (wav, _) in zip(texts.items(), _clips(synth_folder, 3)):
        shutil.copy(wav, root / f"{name}.wav")
        (root / f"{name}.txt").write_bytes(text.encode(encoding))
    source = FolderSource(root)
    read = {e.id: e.text for split in source.splits() for e in source.examples(split)}
    assert read == {name: text for name, (text, _) in texts.items()}  # the BOM is not part of the text
    assert source.describe()["text_encodings"] == {"cp1252": 1, "utf-8": 1, "utf-16": 1}
    (root / "bad.txt").write_bytes(b"\x81\x8d\x8f")  # undefined in cp1252, invalid UTF-8
    shutil.copy(_clips(synth_folder, 1)[0][0], root / "bad.wav")
    with pytest.raises(StudioError, match="bad.txt: the text is neither UTF-8, UTF-16 nor cp1252"):
        FolderSource(root)


def test_a_common_voice_row_with_a_tab_in_the_sentence_is_reported(tmp_path, synth_folder):
    root = tmp_path / "cv"
    (root / "clips").mkdir(parents=True)
    shutil.copy(_clips(synth_folder, 1)[0][0], root / "clips" / "a.mp3")
    header = "client_id\tpath\tsentence\tup_votes\tdown_votes"
    (root / "train.tsv").write_text(f"{header}\nc1\ta.mp3\thei\tpå deg\t2\t0\n")
    with pytest.raises(StudioError, match="train.tsv line 2: 6 fields for 5 columns"):
        FolderSource(root)
