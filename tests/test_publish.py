"""Publishing to the Hub through `huggingface_hub` against a local stand-in of the Hub's upload endpoints: the model
card and files are written locally first, the push goes over a real socket, and a refused token or no network
gives one line and keeps the folder."""

import json
import socket

import pytest
from helpers import run_cli
from hub_standin import TOKEN, HubStandIn

from core.publish import PUBLISH_MARKER


@pytest.fixture
def hub():
    server = HubStandIn().start()
    yield server
    server.shutdown()


def hub_env(url: str, token: str = TOKEN) -> dict:
    # HF_HUB_DISABLE_XET: big files take the Git LFS protocol the stand-in speaks (the real Hub also speaks Xet)
    return {"HF_ENDPOINT": url, "HF_TOKEN": token, "HF_HUB_DISABLE_XET": "1", "HF_HUB_OFFLINE": "0"}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.long
def test_publish_writes_a_card_then_pushes_a_private_repo(populated, hub):
    home = populated.home
    result = run_cli("publish", "page-run", "--repo", "me/nb-tiny-whisper", "--no-push", home=home)
    assert result.returncode == 0, result.stderr[-1500:]
    folder = home / "publish" / "me--nb-tiny-whisper"
    card = (folder / "README.md").read_text()
    saved = json.loads((home / "runs" / "page-run" / "result.json").read_text())
    assert card.startswith('---\nlanguage:\n- "no"\n') and "model-index:" in card
    assert f"value: {round(100 * saved['after']['wer'], 2)}\n      name: Test WER" in card
    assert "split: test" in card and "generate_kwargs" in card and "| learning_rate |" in card
    assert {"model.safetensors", "config.json", "tokenizer.json", "preprocessor_config.json"} <= {
        p.name for p in folder.iterdir()
    }
    assert not (folder / "optimizer.pt").exists()

    pushed = run_cli(
        "publish", "page-run", "--repo", "me/nb-tiny-whisper", "--private", home=home, env=hub_env(hub.url)
    )
    assert pushed.returncode == 0, pushed.stderr[-2000:]
    assert "published (private)" in pushed.stdout
    repo = hub.repos["me/nb-tiny-whisper"]
    assert repo["private"] is True
    local = {p.name: p.read_bytes() for p in folder.iterdir() if p.name != PUBLISH_MARKER}
    assert repo["files"] == local  # every byte arrived, the weights through LFS; our marker stays home
    assert any(method == "PUT" and path.startswith("/lfs/") for method, path in hub.log)  # the weights, via LFS
    meta = hub.cards[-1]  # the card's metadata as the Hub parses it
    result = meta["model-index"][0]["results"][0]
    assert meta["language"] == ["no"] and result["task"]["type"] == "automatic-speech-recognition"
    assert result["metrics"][0] == {"type": "wer", "value": round(100 * saved["after"]["wer"], 2), "name": "Test WER"}
    assert all(TOKEN.encode() not in data for data in local.values())  # the token is never written down


@pytest.mark.long
def test_a_refused_token_or_no_network_gives_one_line_and_keeps_the_folder(populated, hub):
    home = populated.home
    args = ("publish", "page-run", "--repo", "me/kept")
    refused = run_cli(*args, home=home, env=hub_env(hub.url, token="hf_wrong"))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "error: the Hub refused the token (401)" in refused.stderr
    offline = run_cli(*args, home=home, env=hub_env(f"http://127.0.0.1:{closed_port()}"))
    assert offline.returncode == 2 and "error: cannot reach the Hugging Face Hub" in offline.stderr
    folder = home / "publish" / "me--kept"
    assert (folder / "README.md").is_file() and str(folder) in offline.stderr
    again = run_cli("publish", str(folder), "--repo", "me/kept", "--push-only", home=home, env=hub_env(hub.url))
    assert again.returncode == 0, again.stderr[-1500:]
    assert hub.repos["me/kept"]["files"]["README.md"] == (folder / "README.md").read_bytes()


def test_compare_page_writes_the_card_and_pushes(monkeypatch, populated):
    from helpers import no_trouble, open_page

    monkeypatch.setenv("STUDIO_HOME", str(populated.home))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    app = open_page("pages/compare.py")
    app.text_input(key="publish_repo").set_value("me/from-the-page")
    app.button(key="publish_write").click()
    app.run()
    no_trouble(app)
    assert any("Ready in" in s.value and "me--from-the-page" in s.value for s in app.success)
    assert app.button(key="publish_push").disabled  # no token: written, not pushable
    assert any("Results on the held-out test split" in m.value for m in app.markdown)


def test_publish_never_replaces_a_folder_of_someone_elses_files(populated):
    """Issue 26 case 4: a staging folder holding the user's README.md and data.bin is refused, nothing touched."""
    home = populated.home
    folder = home / "publish" / "me--theirs"
    folder.mkdir(parents=True)
    (folder / "README.md").write_text("my own notes")
    (folder / "data.bin").write_bytes(b"precious")
    result = run_cli("publish", "page-run", "--repo", "me/theirs", "--no-push", home=home)
    assert result.returncode == 2 and "holds files publish did not write" in result.stderr
    assert (folder / "README.md").read_text() == "my own notes" and (folder / "data.bin").read_bytes() == b"precious"
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "data.bin"]


@pytest.mark.long
def test_publish_puts_each_format_beside_the_model_with_its_runtime_lines(populated):
    home = populated.home
    result = run_cli("publish", "page-run", "--repo", "me/formats", "--no-push", "--format", "ggml", home=home)
    assert result.returncode == 0, result.stderr[-1500:]
    folder = home / "publish" / "me--formats"
    assert (folder / "ggml" / "ggml-model-q8_0.bin").is_file() and (folder / "model.safetensors").is_file()
    card = (folder / "README.md").read_text()
    assert "### whisper.cpp (pywhispercpp): `" in card and 'hf_hub_download("me/formats", "' in card
    assert "ggml-model-q8_0.bin" in card and "parity not measured" in card
    (folder / "added-by-me.txt").write_text("x")
    again = run_cli("publish", "page-run", "--repo", "me/formats", "--no-push", home=home)
    assert again.returncode == 2 and "added-by-me.txt" in again.stderr and (folder / "added-by-me.txt").exists()
