"""The exact lines that load and run each export in its runtime: what a published model card shows per runtime.

`where` is the export's folder inside a Hub repository (`ggml`, `onnx`, …; "" when the repository's root is the
export), fetched with huggingface_hub before the runtime loads it; `language` is a Whisper code (`no`).
"""

from __future__ import annotations

from core.models.export import VARIANT_FILES


def _fetch(repo_id: str, where: str) -> str:
    pattern = f'allow_patterns="{where}/*"' if where else ""
    folder = f' + "/{where}"' if where else ""
    return f'folder = snapshot_download("{repo_id}"{", " + pattern if pattern else ""}){folder}'


def usage(
    fmt: str, repo_id: str, where: str, language: str, task: str = "transcribe", heads: list | None = None
) -> str:
    """A Python block (and for ggml the whisper.cpp command line) that loads and runs the export."""
    prefix = f"{where}/" if where else ""
    if fmt == "transformers":
        return f"""```python
from transformers import pipeline

asr = pipeline("automatic-speech-recognition", model="{repo_id}")
print(asr("audio.wav", generate_kwargs={{"language": "{language}", "task": "{task}"}})["text"])
```"""
    if fmt == "ct2":
        return f"""```python
from faster_whisper import WhisperModel
from huggingface_hub import snapshot_download

{_fetch(repo_id, where)}
model = WhisperModel(folder, compute_type="int8")
segments, info = model.transcribe("audio.wav", language="{language}", task="{task}")
print(" ".join(s.text for s in segments))
```"""
    if fmt == "ggml":
        small = VARIANT_FILES["ggml"]["q8_0"]
        translate = ", translate=True" if task == "translate" else ""
        return f"""```python
from huggingface_hub import hf_hub_download
from pywhispercpp.model import Model

model = Model(hf_hub_download("{repo_id}", "{prefix}{small}"))
print(" ".join(s.text for s in model.transcribe("audio.wav", language="{language}"{translate})))
```
or with whisper.cpp's own command line: `whisper-cli -m {small} -l {language} -f audio.wav`"""
    if fmt == "openai":
        from core.models.export_openai import OPENAI_FILE

        heads_line = ""
        if heads:
            heads_line = (
                "\n# the alignment heads found for this checkpoint (word timestamps)\n"
                f'model.set_alignment_heads(json.load(open(hf_hub_download("{repo_id}", "{prefix}alignment_heads.json"'
                ')))["dump"].encode())'
            )
        return f"""```python
import json

import whisper
from huggingface_hub import hf_hub_download

model = whisper.load_model(hf_hub_download("{repo_id}", "{prefix}{OPENAI_FILE}")){heads_line}
print(model.transcribe("audio.wav", language="{language}", task="{task}")["text"])
```"""
    if fmt == "onnx":
        encoder = VARIANT_FILES["onnx"]["int8"]
        return f"""```python
import sherpa_onnx
import soundfile
from huggingface_hub import snapshot_download

{_fetch(repo_id, where)}
recognizer = sherpa_onnx.OfflineRecognizer.from_whisper(
    encoder=f"{{folder}}/{encoder}", decoder=f"{{folder}}/{encoder.replace("encoder", "decoder")}",
    tokens=f"{{folder}}/tokens.txt", language="{language}", task="{task}",
)
samples, rate = soundfile.read("audio.wav", dtype="float32")
stream = recognizer.create_stream()
stream.accept_waveform(rate, samples)
recognizer.decode_stream(stream)
print(stream.result.text)
```"""
    raise ValueError(fmt)
