"""The dataset doctor: each kind of problem is found and counted, and the duration histogram adds up."""

import shutil
from collections import Counter

from helpers import make_audio

from core.data import (
    DoctorReport,
    DoctorSample,
    FolderSource,
    PrepareOptions,
    duration_histogram,
    examine,
    prepare_features,
)
from core.languages import get_language


def test_problems_are_found_and_counted(tmp_path, synth_folder, session_workspace, demo_artifact):
    root = tmp_path / "messy"
    for split in ("train", "test"):
        (root / split).mkdir(parents=True)
    wavs = sorted((synth_folder / "train").glob("*.wav"))
    rows = {"train": ["hei på deg", "hei på deg", "straße", "", "ord " * 80, "takk"], "test": ["takk", "god dag"]}
    for split, texts in rows.items():
        for i, text in enumerate(texts):
            shutil.copy(wavs[i], root / split / f"{i}.wav")
            (root / split / f"{i}.txt").write_text(text)
    (root / "train" / "broken.wav").write_bytes(b"RIFFxxxxWAVEjunk")
    (root / "train" / "broken.txt").write_text("ødelagt")
    make_audio(root / "train" / "long.wav", "en to tre fire fem seks sju åtte ni ti " * 2)  # ~6 s > the demo's 3 s
    (root / "train" / "long.txt").write_text("en to tre")
    options = PrepareOptions(max_sequence_length=60)
    report = examine(FolderSource(root), get_language("nb"), "demo", session_workspace, options)
    found = {p.name: p.rows for p in report.problems}
    assert found["audio that cannot be decoded"] == 1
    assert found["empty transcripts"] == 1
    assert found["audio longer than the model's 3 s window"] == 1
    assert found["characters outside the Norwegian Bokmål alphabet"] == 1  # ß
    assert found["labels over 60 tokens"] == 1
    assert found["duplicate transcripts within a split"] == 2
    assert found["evaluation sentences that also occur in train"] == 1  # "takk"
    assert report.splits == {"train": 8, "test": 2} and report.seconds > 0 and report.window_seconds == 3
    # The doctor's "prepare drops these" is what prepare drops: the same rows, for the same reasons.
    artifact = prepare_features(FolderSource(root), get_language("nb"), "demo", "messy", session_workspace, options)
    dropped = {k: v for k, v in artifact.manifest.splits["train"].filtered.items() if v}
    doctor = Counter(r["dropped"] for r in report.rows if r["split"] == "train" and r["dropped"])
    assert (
        dropped
        == dict(doctor)
        == {
            "undecodable_audio": 1,
            "empty_text": 1,
            "audio_too_long": 1,
            "labels_too_long": 1,
        }
    )


def test_histogram_counts_every_decoded_clip():
    report = DoctorReport(
        rows=[{"duration": d} for d in (0.5, 0.7, 1.2, 2.05, None)], problems=[], seconds=0, splits={}
    )
    bins = duration_histogram(report)
    assert sum(b["rows"] for b in bins) == 4
    assert [b["seconds"] for b in bins if b["rows"]] == [0.5, 0.7, 1.2, 2.0]


def test_the_progress_ends_at_what_each_split_held(synth_folder, session_workspace):
    calls = []
    examine(
        FolderSource(synth_folder),
        get_language("nb"),
        "demo",
        session_workspace,
        sample=DoctorSample(limit=100, progress=lambda *a: calls.append(a)),
    )
    last = {split: (done, total) for split, done, total in calls}
    assert set(last) == {"train", "validation", "test"}
    assert all(done == total and done < 100 for done, total in last.values()), last  # never "test: 3/100"
