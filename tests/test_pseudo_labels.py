"""Pseudo-labelling: rows carry the decoding policy's confidences, thresholds route them, the set prepares as any
folder (its manifest counting the pseudo-labels), review edits become training rows, two torchrun ranks label what
one process labels, a killed run resumes losing nothing, and bad input gets one line. Real espeak-ng speech, the
demo toy as the labelling model (its transcripts are nonsense, its confidences real)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf
from helpers import REPO, labels_cut_short

from core.audio import SAMPLE_RATE
from core.cli import main
from core.data import FolderSource, PrepareOptions, prepare_features
from core.data.label_options import DROP, KEEP, REVIEW, LabelOptions, LabelRow, LabelThresholds
from core.data.pseudo_labels import LabelRecord, LabelSet, clip_name, labels_root, write_label_set
from core.errors import StudioError
from core.languages import get_language
from core.speech.labeller import flac_bytes
from core.speech.labelling import label_audio
from core.workspace import Workspace

NB = get_language("nb")
# the untrained toy loops and is unsure of everything: these keep its rows, so the rest of the path can be followed
LOOSE = LabelThresholds(keep_log_prob=-100.0, drop_log_prob=-100.0, max_compression_ratio=100.0)
SPOKEN = 5  # espeak-ng clips of one to four words


@pytest.fixture(scope="module")
def audio_only(synth_folder, tmp_path_factory):
    """Audio alone: five espeak-ng clips, a recording longer than the toy's 3 s window (four clips read with pauses),
    two seconds of digital silence and a file that is not audio."""
    folder = tmp_path_factory.mktemp("unlabelled") / "audio"
    folder.mkdir()
    for wav in sorted(synth_folder.glob("train/*.wav"))[:SPOKEN]:
        shutil.copy(wav, folder / wav.name)
    pause = np.zeros(SAMPLE_RATE, np.float32)
    read = [sf.read(wav, dtype="float32")[0] for wav in sorted(synth_folder.glob("train/*.wav"))[-4:]]
    sf.write(folder / "zz-long.wav", np.concatenate([x for clip in read for x in (clip, pause)]), SAMPLE_RATE)
    sf.write(folder / "zz-silence.wav", np.zeros(2 * SAMPLE_RATE, np.float32), SAMPLE_RATE)
    (folder / "notes.md").write_text("not audio")
    return folder


@pytest.fixture(scope="module")
def labelled(audio_only, tmp_path_factory) -> LabelSet:
    """The folder labelled in one process by the toy, in Norwegian."""
    workspace = Workspace.open(tmp_path_factory.mktemp("label-ws"))
    options = LabelOptions(source=str(audio_only), name="nb-audio", model="demo", language="nb", batch_size=4)
    return label_audio(options, LOOSE, workspace)


def _row(**given) -> LabelRow:
    confident = dict(index=0, id="a", audio_name="a.wav", seconds=2.0, text="hei på deg", avg_log_prob=-0.2)
    return LabelRow(**{**confident, "compression_ratio": 1.3, "no_speech_prob": 0.01, **given})


def test_thresholds_route_each_row_by_its_confidences():
    thresholds = LabelThresholds()  # keep ≥ -0.5, drop < -1.0, loops > 2.4, review no-speech > 0.4, agreement .9/.5
    assert thresholds.route(_row()) == (KEEP, "")
    assert thresholds.route(_row(text="", reason="no speech heard")) == (DROP, "no speech heard")
    assert thresholds.route(_row(compression_ratio=3.1))[0] == DROP
    assert "loop" in thresholds.route(_row(compression_ratio=3.1))[1]
    assert thresholds.route(_row(avg_log_prob=-1.2)) == (DROP, "the model is unsure (average log-probability -1.20)")
    assert thresholds.route(_row(avg_log_prob=-0.7)) == (REVIEW, "average log-probability -0.70")
    assert thresholds.route(_row(no_speech_prob=0.5)) == (REVIEW, "no-speech probability 0.50")
    assert thresholds.route(_row(agreement=0.8)) == (REVIEW, "80% of words agree")
    assert thresholds.route(_row(agreement=0.4))[0] == DROP
    both = thresholds.route(_row(avg_log_prob=-0.7, agreement=0.8))
    assert both == (REVIEW, "average log-probability -0.70; 80% of words agree")
    stricter = replace(thresholds, keep_log_prob=-0.1)
    assert stricter.route(_row()) == (REVIEW, "average log-probability -0.20")  # the same row, another line
    assert _row(avg_log_prob=-0.9).doubt > _row(avg_log_prob=-0.6).doubt > _row().doubt


@pytest.mark.parametrize(
    "change, named",
    [
        (dict(keep_log_prob=-2.0), "drop_log_prob -1.0, keep_log_prob -2.0"),
        (dict(max_compression_ratio=0.5), "max_compression_ratio 0.5"),
        (dict(drop_agreement=0.95), "drop_agreement 0.95"),
        (dict(review_no_speech=float("nan")), "review_no_speech nan: give a finite number"),
    ],
)
def test_thresholds_that_cannot_be_are_refused(change, named):
    with pytest.raises(StudioError, match=named.replace("(", r"\(")):
        replace(LabelThresholds(), **change).validate()


def test_labels_carry_confidences_and_silence_is_dropped(labelled, audio_only):
    rows = labelled.rows()
    assert sorted({r.index for r in rows}) == list(range(SPOKEN + 2))  # every clip; notes.md is no clip
    assert [(r.index, r.part) for r in rows] == sorted((r.index, r.part) for r in rows)  # in the source's order
    long_ = [r for r in rows if r.index == SPOKEN]
    assert len(long_) == long_[0].parts >= 2 and [r.part for r in long_] == list(range(len(long_)))  # one per window
    assert all(r.id.startswith("zz-long@") and r.seconds <= 3.0 for r in long_)  # none longer than the toy hears
    assert len({r.file_name for r in long_}) == len(long_)
    speech, silence = rows[:-1], rows[-1]
    assert (silence.id, silence.decision, silence.reason, silence.file_name) == (
        "zz-silence",
        DROP,
        "no speech heard",
        "",
    )
    for row in speech:
        assert row.text and row.language == "no" and row.seconds > 0.3
        assert row.avg_log_prob < 0 and row.compression_ratio > 0 and 0 <= row.no_speech_prob <= 1
        assert (row.decision, row.reason) == LOOSE.route(row)  # routed by the thresholds asked for
        assert (labelled.root / row.file_name).is_file()  # its audio is kept for training and review
        assert sf.info(labelled.root / row.file_name).samplerate == SAMPLE_RATE
    record = labelled.record()
    assert record.counts == {KEEP: len(speech), REVIEW: 0, DROP: 1} and record.thresholds["keep_log_prob"] == -100.0
    assert record.source == {"kind": "folder", "path": str(audio_only), "layout": "audio"} and record.language == "nb"
    assert not list(labels_root(Workspace(labelled.root.parent.parent)).glob(".*partial"))  # nothing left behind


def test_a_label_set_prepares_as_any_folder_its_manifest_counting_pseudo_labels(labelled, workspace, tmp_path):
    copy = labels_cut_short(labelled.root, tmp_path / "nb-audio")
    source = FolderSource(copy)
    assert source.layout == "audiofolder"
    artifact = prepare_features(source, NB, "demo", "nb-pseudo", workspace, PrepareOptions(validation_fraction=0.2))
    counted = artifact.manifest.source["pseudo_labels"]
    kept = labelled.record().counts[KEEP]
    assert (counted["rows"], counted["reviewed"], counted["model"]) == (kept, 0, "demo")
    assert counted["thresholds"] == labelled.record().thresholds
    assert sum(split.rows for split in artifact.manifest.splits.values()) == kept


@pytest.fixture
def in_review(synth_folder, workspace) -> LabelSet:
    """A label set whose three rows wait for review (written as a label run writes it; real espeak-ng clips)."""
    folder = labels_root(workspace) / "to-review"
    (folder / "clips").mkdir(parents=True)
    rows = []
    for index, wav in enumerate(sorted(synth_folder.glob("test/*.wav"))[:3]):
        samples, _ = sf.read(wav, dtype="float32")
        said = wav.with_suffix(".txt").read_text().strip()
        (folder / clip_name(index)).write_bytes(flac_bytes(samples))
        rows.append(
            LabelRow(index, wav.stem, wav.name, len(samples) / SAMPLE_RATE, said + " x", -0.6 - index / 10, 1.2,
                     0.1, decision=REVIEW, reason="unsure", file_name=clip_name(index), reference=said)
        )  # fmt: skip
    record = LabelRecord("to-review", {"kind": "folder"}, "demo", "", "nb", {}, {}, {REVIEW: 3}, 4.0, 1.0, 1)
    write_label_set(folder, rows, record)
    return LabelSet(folder)


def test_review_edits_become_training_rows(in_review, workspace):
    queue = in_review.queue()
    assert [r.index for r in queue] == [2, 1, 0]  # the most doubtful (lowest log-probability) first
    fixed, kept, dropped = queue
    take = in_review.decide(fixed.id, "fix", fixed.reference)
    assert in_review.decide(kept.id, "keep") is not None
    assert in_review.decide(dropped.id, "drop") is None
    with pytest.raises(StudioError, match="reviewed already"):
        in_review.decide(dropped.id, "keep")
    assert in_review.queue() == []
    summary = in_review.summary()
    assert (summary.review_left, summary.kept_in_review, summary.training_rows) == (0, 2, 2)
    source = FolderSource(in_review.root)
    texts = {e.text for split in source.splits() for e in source.examples(split)}
    assert texts == {fixed.reference, kept.text}  # the corrected text trains, the dropped row does not
    artifact = prepare_features(source, NB, "demo", "reviewed", workspace, PrepareOptions(validation_fraction=0))
    counted = artifact.manifest.source["pseudo_labels"]
    assert (counted["rows"], counted["reviewed"]) == (0, 2) and take.file_name.startswith("take-")


def test_a_long_recording_counts_as_labelled_only_once_all_its_windows_are():
    from core.speech.labelling import labelled_clips

    short = _row(index=0)
    long_ = [_row(index=1, id=f"meeting@{30 * k}.00", part=k, parts=3) for k in range(3)]
    assert labelled_clips([short, *long_]) == {0, 1}
    assert labelled_clips([short, *long_[:2]]) == {0}  # killed after two of its three windows: labelled again


def _label_cli(audio, name: str, home, *extra: str) -> subprocess.Popen:
    args = ["label", "--source", str(audio), "--name", name, "--model", "demo", "--language", "nb", "--home", str(home)]
    loose = ["--keep-log-prob", "-100", "--drop-log-prob", "-100", "--max-compression-ratio", "100"]
    command = [sys.executable, "-m", "core", *args, *loose, *extra]
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _same_rows(first: list[LabelRow], second: list[LabelRow]) -> None:
    assert [(r.index, r.id, r.text, r.decision, r.file_name) for r in first] == [
        (r.index, r.id, r.text, r.decision, r.file_name) for r in second
    ]
    for a, b in zip(first, second):
        assert a.avg_log_prob == pytest.approx(b.avg_log_prob, abs=1e-3)
        assert a.no_speech_prob == pytest.approx(b.no_speech_prob, abs=1e-3)


@pytest.mark.slow  # torchrun starts two processes that each load torch and the model
@pytest.mark.long
def test_two_torchrun_ranks_label_the_same_rows_as_one_process(labelled, audio_only, tmp_path):
    done = _label_cli(audio_only, "two-ranks", tmp_path, "--nproc", "2", "--batch-size", "4")
    out, err = done.communicate(timeout=600)
    assert done.returncode == 0, err[-2000:]
    assert "rank 0/2" in err and "rank 1/2" in err  # each rank labelled its shard
    two = LabelSet.open(Workspace(tmp_path), "two-ranks")
    _same_rows(labelled.rows(), two.rows())
    assert two.record().ranks == 2
    for row in two.rows():
        if row.file_name:
            assert (two.root / row.file_name).read_bytes() == (labelled.root / row.file_name).read_bytes()


@pytest.mark.slow  # two torchrun launchers, as two machines would run them
@pytest.mark.long
def test_two_machines_label_their_shards_and_node_0_merges(labelled, audio_only, tmp_path):
    machines = ("--nnodes", "2", "--master", "127.0.0.1:29537", "--batch-size", "4")
    second = _label_cli(audio_only, "two-nodes", tmp_path, *machines, "--node-rank", "1")
    first = _label_cli(audio_only, "two-nodes", tmp_path, *machines, "--node-rank", "0")
    out, err = second.communicate(timeout=600)
    assert second.returncode == 0 and "node 1: its shards are labelled; node 0 merges them" in out, err[-2000:]
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err[-2000:]
    merged = LabelSet.open(Workspace(tmp_path), "two-nodes")
    _same_rows(labelled.rows(), merged.rows())
    assert merged.record().ranks == 2


@pytest.mark.slow  # a label run killed and run again, through the command line
@pytest.mark.long
def test_a_killed_label_run_resumes_losing_nothing(synth_folder, tmp_path):
    home = tmp_path / "ws"
    first = _label_cli(synth_folder, "resumed", home, "--batch-size", "1")
    shards = Workspace(home).labels / ".resumed.partial" / "shards"
    deadline = time.time() + 300
    while time.time() < deadline and sum(len(p.read_text().splitlines()) for p in shards.glob("*.jsonl")) < 3:
        time.sleep(0.05)
    second = _label_cli(synth_folder, "resumed", home)  # the same name while the first holds it
    _, err = second.communicate(timeout=120)
    assert second.returncode == 2 and err.strip().splitlines()[-1] == (
        "error: label set 'resumed' is being labelled right now by another process; wait for it, or choose another name"
    )
    first.send_signal(signal.SIGKILL)
    first.wait()
    before = [LabelRow(**json.loads(line)) for p in shards.glob("*.jsonl") for line in p.read_text().splitlines()]
    assert 3 <= len(before) < 30 and not (home / "labels" / "resumed").exists()  # nothing looks complete
    again = _label_cli(synth_folder, "resumed", home)
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err[-2000:]
    rows = LabelSet.open(Workspace(home), "resumed").rows()
    assert [r.index for r in rows] == list(range(30))  # every clip of the folder once: none lost, none twice
    for earlier in before:  # what the killed run wrote is kept as it was
        assert rows[earlier.index].text == earlier.text and rows[earlier.index].avg_log_prob == earlier.avg_log_prob
    uninterrupted = _label_cli(synth_folder, "whole", home)
    assert uninterrupted.wait(timeout=600) == 0
    _same_rows(rows, LabelSet.open(Workspace(home), "whole").rows())
    assert {r.reference for r in rows} == {p.read_text().strip() for p in synth_folder.glob("*/*.txt")}


def _one_line(capsys, *args: str) -> str:
    """The command's one error line (a progress bar from building the toy model may come before it)."""
    assert main(list(args)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and not [line for line in err[:-1] if "error" in line or "Traceback" in line]
    return err[-1]


def test_bad_input_gets_one_line_each(tmp_path, capsys, labelled, audio_only):
    home = ["--home", str(tmp_path / "ws")]
    label = ["label", "--model", "demo", *home]
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt").write_text("hei")
    assert "no audio files in it" in _one_line(capsys, *label, "--source", str(tmp_path / "texts"), "--name", "a")
    assert "a file; give the folder" in _one_line(
        capsys, *label, "--source", str(tmp_path / "texts/a.txt"), "--name", "a"
    )
    assert "label set name '../x'" in _one_line(capsys, *label, "--source", str(audio_only), "--name", "../x")
    assert "nproc 0: give a whole number" in _one_line(
        capsys, *label, "--source", str(audio_only), "--name", "a", "--nproc", "0"
    )
    silent = tmp_path / "silent"
    silent.mkdir()
    for i in range(2):
        sf.write(silent / f"{i}.wav", np.zeros(SAMPLE_RATE, np.float32), SAMPLE_RATE)
    line = _one_line(capsys, *label, "--source", str(silent), "--name", "quiet")
    assert line == (
        f"error: {silent}: none of its 2 clips gave a transcript to keep or review (2: no speech heard); give audio "
        f"with speech in it"
    )
    assert (
        not (tmp_path / "ws" / "labels" / "quiet").exists()
        and not (tmp_path / "ws" / "labels" / ".quiet.partial").exists()
    )
    home = ["--home", str(labelled.root.parent.parent)]
    line = _one_line(capsys, "label", "--model", "demo", *home, "--source", str(audio_only), "--name", "nb-audio")
    assert line == f"error: label set 'nb-audio' exists ({labelled.root}); choose another name"
    assert os.path.isdir(labelled.root)


@pytest.mark.slow  # over 4 s: out of the fast lane
def test_the_data_page_reviews_rows_the_most_doubtful_first(in_review, workspace, monkeypatch):
    from helpers import no_trouble, open_page

    monkeypatch.setenv("STUDIO_HOME", str(workspace.home))
    app = open_page("pages/data.py")
    first = in_review.queue()[0]
    key = f"review-to-review-{first.index}-0"
    shown = [t.key for t in app.text_area if t.key and t.key.startswith("review-")]
    assert shown == [f"review-to-review-{r.index}-0-text" for r in in_review.queue()]  # in the queue's order
    assert app.button(key=f"{key}-fix").disabled  # nothing corrected yet
    app.text_area(key=f"{key}-text").set_value(first.reference)
    app.run()
    app.button(key=f"{key}-fix").click()
    app.run()
    no_trouble(app)
    assert in_review.reviewed()[first.id] == {"id": first.id, "action": "fix", "text": first.reference,
                                             "take": "take-0001.wav"}  # fmt: skip
    assert any(f"{first.id}: kept as take-0001.wav" in s.value for s in app.success)
    assert f"{key}-text" not in [t.key for t in app.text_area]  # decided: out of the queue
