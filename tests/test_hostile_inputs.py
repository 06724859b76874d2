"""User mistakes and hostile inputs get one line and lose nothing (issue 18): an export over a folder of other
files, hours-long audio, a damaged model file, a Hub audio column of numbers, NaN samples."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from datasets import Dataset
from helpers import make_audio, run_cli

import core.audio.decode as decode
from core.audio import SAMPLE_RATE, load_audio
from core.audio.decode import MAX_AUDIO_HOURS, audio_duration, audio_pieces, finite_audio_problem
from core.data import HubSource
from core.data.examples import Example
from core.data.rows import TooLong, decoded
from core.errors import StudioError
from core.models import resolve_model
from core.speech import Transcriber
from core.workspace import Workspace, staged_folder


def one_error_line(result) -> str:
    """The CLI refused with exit 2 and one `error:` line, no traceback; returns that line."""
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-2000:]
    return errors[0]


def a_checkpoint(populated) -> Path:
    run = populated.run("page-run")
    return sorted(run.glob("checkpoint-*"))[-1]


def test_export_refuses_a_folder_of_other_files_and_removes_nothing(populated, tmp_path):
    out = tmp_path / "x"
    (out / "sub").mkdir(parents=True)
    (out / "p.txt").write_text("precious\n")
    line = one_error_line(run_cli("export", "--model", str(a_checkpoint(populated)), "--out", str(out)))
    assert str(out) in line and "--out" in line
    assert (out / "p.txt").read_text() == "precious\n" and (out / "sub").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]  # no staging folder left beside it


def test_export_into_the_workspace_itself_is_refused(populated, tmp_path):
    home = tmp_path / "ws"  # a workspace of its own: were it replaced, the session's would survive
    for folder in ("runs/r1", "datasets/d1", "models/m1"):
        (home / folder).mkdir(parents=True)
        (home / folder / "config.json").write_text("{}")
    before = sorted(str(p.relative_to(home)) for p in home.rglob("*"))
    line = one_error_line(run_cli("export", "--model", str(a_checkpoint(populated)), "--out", str(home), home=home))
    assert str(home) in line
    assert sorted(str(p.relative_to(home)) for p in home.rglob("*")) == before


def test_staged_folder_replaces_only_what_the_caller_vouches_for(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(StudioError, match="did not write"):
        with staged_folder(foreign, marker="ours.json") as staging:
            (staging / "ours.json").write_text("{}")
    assert (foreign / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["foreign"]

    ours = tmp_path / "ours"
    for _ in range(2):  # made, then made again over its own earlier self
        with staged_folder(ours, marker="ours.json") as staging:
            (staging / "ours.json").write_text("{}")
    empty = tmp_path / "empty"
    empty.mkdir()
    with staged_folder(empty, marker="ours.json") as staging:
        (staging / "ours.json").write_text("{}")
    assert (ours / "ours.json").is_file() and (empty / "ours.json").is_file()
    (tmp_path / "file").write_text("x")
    with pytest.raises(StudioError, match="is a file"):
        with staged_folder(tmp_path / "file", marker="ours.json"):
            pass


def test_a_foreign_folder_where_the_demo_model_goes_is_kept(tmp_path):
    workspace = Workspace.open(tmp_path / "ws")
    (workspace.models / "demo").mkdir(parents=True)
    (workspace.models / "demo" / "p.txt").write_text("precious")
    with pytest.raises(StudioError, match="did not write"):
        resolve_model("demo", workspace)
    assert (workspace.models / "demo" / "p.txt").read_text() == "precious"


@pytest.fixture
def damaged_checkpoint(populated, tmp_path) -> Path:
    folder = tmp_path / "damaged"
    shutil.copytree(a_checkpoint(populated), folder)
    (folder / "model.safetensors").write_bytes(np.random.default_rng(0).bytes(1000))
    return folder


@pytest.mark.parametrize("command", ["evaluate", "export", "transcribe"])
def test_a_damaged_model_file_gets_one_line_naming_it(populated, damaged_checkpoint, tmp_path, command):
    extra = {
        "evaluate": ["--data", "nb-tiny"],
        "export": ["--out", str(tmp_path / "out")],
        "transcribe": [str(make_audio(tmp_path / "clip.wav"))],
    }[command]
    result = run_cli(command, "--model", str(damaged_checkpoint), *extra, home=populated.home)
    line = one_error_line(result)
    assert str(damaged_checkpoint / "model.safetensors") in line and "damaged" in line
    assert "re-export it or pick another checkpoint" in line
    assert not (tmp_path / "out").exists()


def test_exporting_a_folder_of_random_files_gets_one_line(populated, tmp_path):
    folder = tmp_path / "random"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for name in ("config.json", "processor_config.json", "model.safetensors"):
        (folder / name).write_bytes(rng.bytes(500))
    line = one_error_line(
        run_cli("export", "--model", str(folder), "--out", str(tmp_path / "out"), home=populated.home)
    )
    assert str(folder / "config.json") in line and "damaged" in line


@pytest.fixture(scope="module")
def numbers_for_audio(tmp_path_factory) -> Path:
    """A Hub-style local repository whose `audio` column holds integers."""
    repo = tmp_path_factory.mktemp("hub") / "numbers"
    (repo / "data").mkdir(parents=True)
    for split in ("train", "test"):
        rows = Dataset.from_dict({"audio": [1, 2, 3], "transcription": ["en", "to", "tre"]})
        rows.to_parquet(str(repo / "data" / f"{split}-00000-of-00001.parquet"))
    return repo


@pytest.mark.parametrize("streaming", [False, True])
def test_a_hub_audio_column_of_numbers_gets_one_line(numbers_for_audio, streaming):
    with pytest.raises(StudioError) as err:
        list(HubSource(str(numbers_for_audio), streaming=streaming).examples("train"))
    message = str(err.value)
    assert "\n" not in message and "'audio'" in message and "int64" in message
    assert "{bytes, path}" in message and "path string" in message


def test_nan_and_inf_samples_are_refused_in_one_line(populated, tmp_path):
    samples = make_audio(tmp_path / "clip.wav")
    audio = load_audio(samples)
    assert finite_audio_problem(audio) is None
    audio[100:200] = np.nan
    audio[300] = np.inf
    assert "invalid (NaN/inf)" in finite_audio_problem(audio)
    path = tmp_path / "nan.wav"
    sf.write(path, audio, SAMPLE_RATE, subtype="FLOAT")  # float wav holds NaN as it is
    with pytest.raises(StudioError, match=r"nan\.wav: .*invalid \(NaN/inf\) samples"):
        Transcriber("demo", populated, language="no").transcribe_file(path)


def test_twenty_minutes_of_near_silence_decode_in_pieces_to_no_text(populated, tmp_path):
    path = tmp_path / "quiet.flac"
    rng = np.random.default_rng(2)
    with sf.SoundFile(path, "w", SAMPLE_RATE, 1, subtype="PCM_16", format="FLAC") as f:
        for _ in range(20):  # a minute at a time: -66 dBFS hiss, under the voice detector's floor
            f.write((rng.standard_normal(60 * SAMPLE_RATE) * 16).astype(np.int16))
    assert audio_duration(path) == pytest.approx(1200)
    assert len(list(audio_pieces(path))) > 1
    transcript = Transcriber("demo", populated, language="no").transcribe_file(path)
    assert transcript.segments == [] and transcript.duration == pytest.approx(1200)


def test_speech_across_a_piece_boundary_is_decoded_once(populated, tmp_path, monkeypatch):
    clip = load_audio(make_audio(tmp_path / "clip.wav"))
    audio = (np.random.default_rng(3).standard_normal(40 * SAMPLE_RATE) * 1e-3).astype(np.float32)
    for at_s in (3.0, 9.5, 25.0):  # the second runs over the 10 s boundary
        start = int(at_s * SAMPLE_RATE)
        audio[start : start + len(clip)] += clip
    path = tmp_path / "long.wav"
    sf.write(path, audio, SAMPLE_RATE, subtype="FLOAT")
    transcriber = Transcriber("demo", populated, language="no")
    whole = transcriber.transcribe_file(path)
    monkeypatch.setattr(decode, "PIECE_SECONDS", 10)
    assert len(list(audio_pieces(path))) == 4
    pieces = transcriber.transcribe_file(path)
    assert len(pieces.segments) == len(whole.segments) == 3
    for a, b in zip(whole.segments, pieces.segments):
        assert a.start == pytest.approx(b.start, abs=0.05) and a.end == pytest.approx(b.end, abs=0.05)
    assert pieces.segments[1].start < 10 < pieces.segments[1].end  # one window across the boundary, not two halves


def test_audio_over_the_limit_is_refused_before_decoding(tmp_path):
    path = tmp_path / "day.flac"
    rate = 1000  # a low rate keeps the file small; the header still says 25 hours
    with sf.SoundFile(path, "w", rate, 1, subtype="PCM_16", format="FLAC") as f:
        for _ in range(MAX_AUDIO_HOURS + 1):
            f.write(np.zeros(3600 * rate, np.int16))
    with pytest.raises(StudioError, match=f"over the {MAX_AUDIO_HOURS}-hour limit") as err:
        next(audio_pieces(path))
    assert "\n" not in str(err.value)


def test_prepare_drops_a_too_long_clip_without_decoding_it(tmp_path, monkeypatch):
    path = tmp_path / "long.wav"
    sf.write(path, np.zeros(60 * SAMPLE_RATE, np.float32), SAMPLE_RATE)

    def never(*args, **kwargs):
        raise AssertionError("the too-long clip was decoded")

    monkeypatch.setattr("core.data.examples.load_audio", never)
    [(example, audio)] = list(decoded(iter([Example("long", path, "tekst")]), max_samples=30 * SAMPLE_RATE))
    assert isinstance(audio, TooLong) and len(audio) == 60 * SAMPLE_RATE
