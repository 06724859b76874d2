"""The exact lines that load and run each export in its runtime: what a published model card shows per runtime.

`where` is the export's folder inside a Hub repository (`ggml`, `onnx`, …; "" when the repository's root is the
export), fetched with huggingface_hub before the runtime loads it; `language` is a Whisper code (`no`).
"""

from __future__ import annotations

from dataclasses import dataclass

from core.models.export import VARIANT_FILES


def _fetch(repo_id: str, where: str) -> str:
    pattern = f'allow_patterns="{where}/*"' if where else ""
    folder = f' + "/{where}"' if where else ""
    return f'folder = snapshot_download("{repo_id}"{", " + pattern if pattern else ""}){folder}'


@dataclass(frozen=True)
class HostedExport:
    """An export as a model card's reader fetches it: the repository, the export's folder in it ("" at its root),
    the Whisper language code, the task, and the alignment heads found for it (openai-whisper's word times)."""

    repo_id: str
    where: str
    language: str
    task: str = "transcribe"
    heads: list | None = None

    @property
    def prefix(self) -> str:
        return f"{self.where}/" if self.where else ""


def usage(
    fmt: str, repo_id: str, where: str, language: str, task: str = "transcribe", heads: list | None = None
) -> str:
    """A Python block (and for ggml the whisper.cpp command line) that loads and runs the export."""
    if fmt not in USAGE:
        raise ValueError(fmt)
    return USAGE[fmt](HostedExport(repo_id, where, language, task, heads))


def _transformers_usage(hosted: HostedExport) -> str:
    """The transformers pipeline, straight from the repository."""
    return f"""```python
from transformers import pipeline

asr = pipeline("automatic-speech-recognition", model="{hosted.repo_id}")
print(asr("audio.wav", generate_kwargs={{"language": "{hosted.language}", "task": "{hosted.task}"}})["text"])
```"""


def _ct2_usage(hosted: HostedExport) -> str:
    """faster-whisper on the CTranslate2 folder."""
    return f"""```python
from faster_whisper import WhisperModel
from huggingface_hub import snapshot_download

{_fetch(hosted.repo_id, hosted.where)}
model = WhisperModel(folder, compute_type="int8")
segments, info = model.transcribe("audio.wav", language="{hosted.language}", task="{hosted.task}")
print(" ".join(s.text for s in segments))
```"""


def _ggml_usage(hosted: HostedExport) -> str:
    """pywhispercpp on the q8_0 file, and whisper.cpp's own command line."""
    small = VARIANT_FILES["ggml"]["q8_0"]
    translate = ", translate=True" if hosted.task == "translate" else ""
    return f"""```python
from huggingface_hub import hf_hub_download
from pywhispercpp.model import Model

model = Model(hf_hub_download("{hosted.repo_id}", "{hosted.prefix}{small}"))
print(" ".join(s.text for s in model.transcribe("audio.wav", language="{hosted.language}"{translate})))
```
or with whisper.cpp's own command line: `whisper-cli -m {small} -l {hosted.language} -f audio.wav`"""


def _openai_usage(hosted: HostedExport) -> str:
    """openai-whisper on its checkpoint file, with the alignment heads where they were found."""
    from core.models.export_openai import OPENAI_FILE

    heads_line = ""
    if hosted.heads:
        heads_line = (
            "\n# the alignment heads found for this checkpoint (word timestamps)\n"
            f'model.set_alignment_heads(json.load(open(hf_hub_download("{hosted.repo_id}", '
            f'"{hosted.prefix}alignment_heads.json"'
            ')))["dump"].encode())'
        )
    return f"""```python
import json

import whisper
from huggingface_hub import hf_hub_download

model = whisper.load_model(hf_hub_download("{hosted.repo_id}", "{hosted.prefix}{OPENAI_FILE}")){heads_line}
print(model.transcribe("audio.wav", language="{hosted.language}", task="{hosted.task}")["text"])
```"""


def _onnx_usage(hosted: HostedExport) -> str:
    """sherpa-onnx on the int8 encoder and decoder."""
    encoder = VARIANT_FILES["onnx"]["int8"]
    return f"""```python
import sherpa_onnx
import soundfile
from huggingface_hub import snapshot_download

{_fetch(hosted.repo_id, hosted.where)}
recognizer = sherpa_onnx.OfflineRecognizer.from_whisper(
    encoder=f"{{folder}}/{encoder}", decoder=f"{{folder}}/{encoder.replace("encoder", "decoder")}",
    tokens=f"{{folder}}/tokens.txt", language="{hosted.language}", task="{hosted.task}",
)
samples, rate = soundfile.read("audio.wav", dtype="float32")
stream = recognizer.create_stream()
stream.accept_waveform(rate, samples)
recognizer.decode_stream(stream)
print(stream.result.text)
```"""


USAGE = {  # format → the lines that run it
    "transformers": _transformers_usage,
    "ct2": _ct2_usage,
    "ggml": _ggml_usage,
    "openai": _openai_usage,
    "onnx": _onnx_usage,
}
