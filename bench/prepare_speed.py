"""Feature preparation speed: our `prepare_features` against the recipe's `datasets.map(prepare_dataset)`.

Both read the same espeak-ng clips with the same decoder and a whisper-small processor (80 mel bins, 30 s window,
the real tokenizer), on the same cores. The recipe calls the feature extractor once per example and stores float32
lists in Arrow; ours extracts in batches on the torch STFT path and stores float16 bytes.

    python bench/prepare_speed.py [--clips 500]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import write_section  # noqa: E402
from core.audio import load_audio  # noqa: E402
from core.features import PrepareOptions, prepare_features  # noqa: E402
from core.folders import FolderSource  # noqa: E402
from core.languages import get_language  # noqa: E402
from core.models import TOKENIZER_ASSETS  # noqa: E402
from core.synth import SynthSpec, synthesize_dataset  # noqa: E402
from core.workspace import Workspace  # noqa: E402


def whisper_small_processor(folder: Path) -> Path:
    """openai/whisper-small's processor, offline: its feature extractor defaults and the real tokenizer."""
    from transformers import WhisperFeatureExtractor, WhisperProcessor, WhisperTokenizer

    processor = WhisperProcessor(WhisperFeatureExtractor(), WhisperTokenizer.from_pretrained(str(TOKENIZER_ASSETS)))
    processor.save_pretrained(folder)
    return folder


def recipe_prepare(source: FolderSource, processor_dir: Path, cache: Path) -> int:
    """The Hugging Face fine-tuning recipe's feature step: one example at a time through datasets.map."""
    from datasets import Dataset
    from transformers import WhisperProcessor

    processor = WhisperProcessor.from_pretrained(processor_dir)
    processor.tokenizer.set_prefix_tokens(language="no", task="transcribe")
    rows = [e for split in source.splits() for e in source.examples(split)]
    data = Dataset.from_dict({"path": [str(e.audio) for e in rows], "sentence": [e.text for e in rows]})

    def prepare_dataset(batch):
        audio = load_audio(batch["path"])
        batch["input_features"] = processor.feature_extractor(audio, sampling_rate=16000).input_features[0]
        batch["labels"] = processor.tokenizer(batch["sentence"]).input_ids
        return batch

    out = data.map(prepare_dataset, remove_columns=data.column_names, cache_file_name=str(cache / "recipe.arrow"))
    return len(out)


OURS = "ours: `prepare_features`: log-mel where there is sound, threaded decoding, fp16 Arrow"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        nb = get_language("nb")
        folder = synthesize_dataset(nb, tmp / "clips", SynthSpec(language="nb", n=args.clips, seed=7))
        processor = whisper_small_processor(tmp / "whisper-small-processor")
        source = FolderSource(folder)
        for p in folder.rglob("*.wav"):
            p.read_bytes()  # warm the page cache for both contestants

        start = time.perf_counter()
        n_recipe = recipe_prepare(source, processor, tmp)
        recipe_s = time.perf_counter() - start

        start = time.perf_counter()
        artifact = prepare_features(source, nb, str(processor), "bench", Workspace(tmp / "ws"), PrepareOptions())
        ours_s = time.perf_counter() - start
        n_ours = sum(s["rows"] for s in artifact.manifest["splits"].values())

    recipe_rate, ours_rate = n_recipe / recipe_s, n_ours / ours_s
    body = f"""## Feature preparation (`bench/prepare_speed.py`)

{args.clips} espeak-ng clips, whisper-small processor (80 mel bins × 3000 frames, real tokenizer), same decoder.

| path | clips | seconds | clips/s |
|---|---:|---:|---:|
| recipe: `datasets.map(prepare_dataset)`, extractor per example | {n_recipe} | {recipe_s:.1f} | {recipe_rate:.1f} |
| {OURS} | {n_ours} | {ours_s:.1f} | {ours_rate:.1f} |

**Ratio: {ours_rate / recipe_rate:.2f}× the recipe's clips/s.**"""
    write_section("prepare", body)
    print(body)


if __name__ == "__main__":
    main()
