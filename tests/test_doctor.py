"""The dataset doctor: each kind of problem is found and counted, and the duration histogram adds up."""

import shutil

from core.doctor import DoctorReport, duration_histogram, examine
from core.folders import FolderSource
from core.languages import get_language
from core.models import load_processor


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
    processor = load_processor("demo", session_workspace)
    processor.tokenizer.set_prefix_tokens(language="no", task="transcribe")
    report = examine(FolderSource(root), get_language("nb"), processor.tokenizer, window_seconds=3.0, max_tokens=60)
    found = {p.name: p.rows for p in report.problems}
    assert found["audio that cannot be decoded"] == 1
    assert found["empty transcripts"] == 1
    assert found["characters outside the Norwegian Bokmål alphabet"] == 1  # ß
    assert found["labels over 60 tokens"] == 1
    assert found["duplicate transcripts within a split"] == 2
    assert found["test sentences that also occur in train"] == 1  # "takk"
    assert report.splits == {"train": 7, "test": 2} and report.seconds > 0


def test_histogram_counts_every_decoded_clip():
    report = DoctorReport(
        rows=[{"duration": d} for d in (0.5, 0.7, 1.2, 2.05, None)], problems=[], seconds=0, splits={}
    )
    bins = duration_histogram(report)
    assert sum(b["rows"] for b in bins) == 4
    assert [b["seconds"] for b in bins if b["rows"]] == [0.5, 0.7, 1.2, 2.0]
