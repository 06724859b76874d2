"""The Hub code path, exercised offline against a local dataset repository (parquet with embedded audio bytes)
passed to the very same `load_dataset` call; and the one-line errors for what goes wrong with the Hub."""

import pytest
from datasets import Audio, Dataset

from core.data import HubSource, open_source
from core.errors import StudioError
from core.languages import get_language

README = """---
configs:
- config_name: nb_no
  data_files:
  - split: train
    path: nb_no/train-*.parquet
  - split: test
    path: nb_no/test-*.parquet
---
# A local copy in the FLEURS shape
"""


@pytest.fixture(scope="module")
def local_repo(tmp_path_factory, synth_folder):
    repo = tmp_path_factory.mktemp("hub") / "fleurs-like"
    (repo / "nb_no").mkdir(parents=True)
    for split in ("train", "test"):
        wavs = sorted((synth_folder / split).glob("*.wav"))[:4]
        data = Dataset.from_dict(
            {
                "id": [f"{split}-{i}" for i in range(len(wavs))],
                "audio": [{"bytes": w.read_bytes(), "path": w.name} for w in wavs],
                "transcription": [w.with_suffix(".txt").read_text().strip() for w in wavs],
                "raw_transcription": [w.with_suffix(".txt").read_text().strip().upper() for w in wavs],
            }
        ).cast_column("audio", Audio(decode=False))
        data.to_parquet(str(repo / "nb_no" / f"{split}-00000-of-00001.parquet"))
    (repo / "README.md").write_text(README)
    return repo


@pytest.mark.parametrize("streaming", [False, True])
def test_local_repository_through_load_dataset(local_repo, synth_folder, streaming):
    source = HubSource(str(local_repo), "nb_no", streaming=streaming)
    rows = list(source.examples("test"))
    wavs = sorted((synth_folder / "test").glob("*.wav"))[:4]
    assert [r.text for r in rows] == [w.with_suffix(".txt").read_text().strip() for w in wavs]  # detected column
    assert rows[0].id == "test-0"
    assert abs(len(rows[0].load_audio()) - len(__import__("core.audio.decode").audio.decode.load_audio(wavs[0]))) < 10
    assert source.describe()["streaming"] is streaming and "token" not in source.describe()


def test_text_column_given_and_missing(local_repo):
    rows = list(HubSource(str(local_repo), "nb_no", text_column="raw_transcription").examples("train"))
    assert rows[0].text.isupper()
    with pytest.raises(StudioError, match="no column 'sentence'.*transcription"):
        list(HubSource(str(local_repo), "nb_no", text_column="sentence").examples("train"))


def test_unknown_config_and_split_name_the_choices(local_repo):
    with pytest.raises(StudioError, match="nb_no"):
        list(HubSource(str(local_repo), "sv_se").examples("train"))
    with pytest.raises(StudioError, match="split"):
        list(HubSource(str(local_repo), "nb_no", split_names={"train": "train", "test": "dev"}).examples("test"))


def test_unreachable_hub_and_script_datasets_get_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(StudioError) as err:
        list(HubSource("google/fleurs-nonexistent", "nb_no").examples("train"))
    message = str(err.value)
    assert "\n" not in message and "google/fleurs-nonexistent" in message
    assert "cannot reach the Hugging Face Hub" in message or "not found" in message

    scripted = tmp_path / "scripted"
    scripted.mkdir()
    (scripted / "scripted.py").write_text("import datasets\n")
    with pytest.raises(StudioError, match="script"):
        list(HubSource(str(scripted)).examples("train"))


def test_presets_fill_in_the_language():
    fleurs = open_source("fleurs", get_language("nb"))
    assert (fleurs.dataset_id, fleurs.config, fleurs.text_column) == ("google/fleurs", "nb_no", "transcription")
    assert fleurs.split_names == {"train": "train", "test": "test", "validation": "validation"}
    npsc = open_source("npsc", get_language("nn"))
    assert npsc.config == "16K_mp3_nynorsk" and npsc.streaming
    for moved in ("common_voice", "mozilla-foundation/common_voice_17_0"):
        with pytest.raises(
            StudioError, match="Common Voice left the Hugging Face Hub in 2025.*Mozilla Data Collective"
        ):
            open_source(moved, get_language("sv"))
    with pytest.raises(StudioError, match="google/fleurs has no Breton config"):
        open_source("fleurs", get_language("br"))
    with pytest.raises(StudioError, match="no such folder"):
        open_source("./not/here", get_language("nb"))


def test_arrow_allocates_through_malloc_while_datasets_converts_then_the_pool_is_restored():
    import pyarrow as pa

    from core.data.memory import release_unused_memory, system_allocator_for_arrow

    before = pa.default_memory_pool().backend_name
    with system_allocator_for_arrow():
        assert pa.default_memory_pool().backend_name == "system"
        array = pa.array(range(100_000))
        assert pa.system_memory_pool().bytes_allocated() >= 8 * 100_000  # allocated where we said
    assert pa.default_memory_pool().backend_name == before
    del array
    release_unused_memory()  # callable at any time, on any C library
