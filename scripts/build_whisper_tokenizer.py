"""Build the multilingual OpenAI Whisper tokenizer as Hugging Face files in `assets/whisper-tokenizer/`, offline.

Nothing can come from the Hugging Face Hub here, but the real tokenizer ships in the `openai-whisper` sdist on PyPI:
this script downloads it (pinned version and SHA-256) with `pip download`, takes the byte-level BPE ranks
(`whisper/assets/multilingual.tiktoken`), the special tokens in Whisper's own order (`get_encoding` in
`whisper/tokenizer.py`) and the English spelling normalizer (`whisper/normalizers/english.json`), converts the ranks
with transformers' `TikTokenConverter` and appends the 1,608 special tokens of the non-v3 multilingual models (tiny to
large-v2): `<|endoftext|>` = 50257, `<|startoftranscript|>`, the 99 languages `<|en|>` to `<|su|>`, the task and
control tokens, then the timestamps `<|0.00|>` to `<|30.00|>`, 51,865 tokens in all. Every id and a few encodings are
checked against Whisper's own tiktoken encoding before and after saving, and the folder is replaced atomically (temp
dir, then rename) with the files `WhisperTokenizer.from_pretrained` reads. Needs `tiktoken` at build time only, for
the converter and Whisper's `tokenizer.py`: `.venv/bin/pip install tiktoken`, then
`.venv/bin/python scripts/build_whisper_tokenizer.py`.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from transformers import WhisperTokenizer
from transformers.convert_slow_tokenizer import TikTokenConverter

WHISPER_VERSION = "20250625"  # latest openai-whisper on PyPI
SDIST_SHA256 = "37a91a3921809d9f44748ffc73c0a55c9f366c85a3ef5c2ae0cc09540432eb96"
NUM_LANGUAGES = 99  # the non-v3 multilingual vocabulary; large-v3 adds <|yue|> and has 51,866 tokens
MODEL_MAX_LENGTH = 448  # Whisper's decoder context (n_text_ctx)
NEEDED = {
    "whisper/tokenizer.py",
    "whisper/assets/multilingual.tiktoken",
    "whisper/normalizers/english.json",
}
TIMESTAMP = re.compile(r"<\|\d+\.\d\d\|>")
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "assets" / "whisper-tokenizer"
SAMPLES = ["Hello world", "Blåbærsyltetøy er godt", "æøå ÆØÅ, nynorsk: eg et ikkje", " x\n\n 12345 'll 日本語!"]


def fetch_whisper_sources(workdir: Path) -> Path:
    """Download the pinned sdist into `workdir`, verify it, extract the needed files; return the `whisper/` dir."""
    pip_download = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:"]
    subprocess.run([*pip_download, f"openai-whisper=={WHISPER_VERSION}", "--dest", str(workdir)], check=True)
    (sdist,) = workdir.glob(f"openai_whisper-{WHISPER_VERSION}.tar.gz")
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        raise SystemExit(f"{sdist.name}: SHA-256 {digest} is not the pinned {SDIST_SHA256}")
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.name.split("/", 1)[-1] in NEEDED]
        if len(members) != len(NEEDED):
            raise SystemExit(f"{sdist.name} lacks some of {sorted(NEEDED)}")
        tar.extractall(workdir / "src", members=members, filter="data")
    return workdir / "src" / f"openai_whisper-{WHISPER_VERSION}" / "whisper"


def load_whisper_encoding(whisper_dir: Path):
    """Whisper's own tiktoken encoding (BPE ranks plus special tokens), from its `tokenizer.py`."""
    if importlib.util.find_spec("tiktoken") is None:
        raise SystemExit(f"needs tiktoken: {sys.executable} -m pip install tiktoken")
    spec = importlib.util.spec_from_file_location("openai_whisper_tokenizer", whisper_dir / "tokenizer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_encoding("multilingual", num_languages=NUM_LANGUAGES)


def build_tokenizer(whisper_dir: Path, encoding) -> WhisperTokenizer:
    specials = sorted(encoding.special_tokens_set, key=encoding.encode_single_token)
    control = [token for token in specials if not TIMESTAMP.fullmatch(token)]
    timestamps = [token for token in specials if TIMESTAMP.fullmatch(token)]
    converter = TikTokenConverter(
        vocab_file=str(whisper_dir / "assets" / "multilingual.tiktoken"), pattern=encoding._pat_str
    )
    model = json.loads(converter.converted().to_str())["model"]
    tokenizer = WhisperTokenizer(
        vocab=model["vocab"],
        merges=[tuple(merge) for merge in model["merges"]],
        normalizer_file=str(whisper_dir / "normalizers" / "english.json"),
        model_max_length=MODEL_MAX_LENGTH,
    )
    # Control tokens are special (skipped by skip_special_tokens; the last one, <|notimestamps|>, is what
    # WhisperTokenizer takes as the end of the special range); timestamps are plain added tokens, as on the Hub.
    tokenizer.add_special_tokens({"extra_special_tokens": control})
    tokenizer.add_tokens(timestamps, special_tokens=False)
    # As on the Hub's openai/whisper-* tokenizers: labels are padded with <|endoftext|>.
    tokenizer.pad_token = "<|endoftext|>"
    tokenizer.set_prefix_tokens()  # rebuild the post-processor now that <|startoftranscript|> exists
    check(tokenizer, encoding, specials)
    return tokenizer


def check(tokenizer: WhisperTokenizer, encoding, specials: list[str]) -> None:
    """Fail loudly unless every id and a few encodings agree with Whisper's own tiktoken encoding."""
    problems = [f"len {len(tokenizer)} != {encoding.n_vocab}"] if len(tokenizer) != encoding.n_vocab else []
    for token in specials:
        ours, theirs = tokenizer.convert_tokens_to_ids(token), encoding.encode_single_token(token)
        if ours != theirs:
            problems.append(f"{token} -> {ours}, Whisper says {theirs}")
    for text in SAMPLES:
        ours = tokenizer(text, add_special_tokens=False).input_ids
        if ours != encoding.encode_ordinary(text) or tokenizer.decode(ours) != text:
            problems.append(f"{text!r}: {ours} != {encoding.encode_ordinary(text)}")
    if tokenizer.all_special_ids[-1] != encoding.encode_single_token("<|notimestamps|>"):
        problems.append(f"last special id is {tokenizer.all_special_ids[-1]}, not <|notimestamps|>")
    if problems:
        raise SystemExit("tokenizer does not match Whisper:\n  " + "\n  ".join(problems))


def write_atomically(tokenizer: WhisperTokenizer, encoding, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    staging.chmod(0o755)  # mkdtemp makes it private
    try:
        tokenizer.save_pretrained(staging)  # tokenizer.json, tokenizer_config.json
        tokenizer.save_vocabulary(str(staging))  # vocab.json, merges.txt, normalizer.json (as on the Hub)
        reloaded = WhisperTokenizer.from_pretrained(staging)
        check(reloaded, encoding, sorted(encoding.special_tokens_set, key=encoding.encode_single_token))
        old = out.with_name(f".{out.name}-old")
        shutil.rmtree(old, ignore_errors=True)
        if out.exists():
            out.rename(old)
        staging.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        whisper_dir = fetch_whisper_sources(Path(tmp))
        encoding = load_whisper_encoding(whisper_dir)
        tokenizer = build_tokenizer(whisper_dir, encoding)
        write_atomically(tokenizer, encoding, args.out.resolve())
    for path in sorted(args.out.iterdir()):
        print(f"{path.stat().st_size:>10,}  {path}")


if __name__ == "__main__":
    main()
