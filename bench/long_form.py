"""Long recordings and word timestamps with whisper-base: ours at its defaults against faster-whisper.

Recordings: espeak-ng reads free sentences written here (text-disjoint from core/data/synth's training templates)
with pauses, in English and Norwegian, clean and with white noise at 10 dB and 0 dB SNR (noise power against the
speech's). Sides, all on the same installed whisper-base CTranslate2 folder, int8, the same threads, language given:
- ours: `Transcriber.transcribe_file` with `DecodingOptions()` (beam 5, temperature fallback, Silero VAD);
- faster-whisper `WhisperModel.transcribe` at its defaults (beam 5), and with `vad_filter=True`;
- faster-whisper `BatchedInferencePipeline` (its defaults: beam 5, Silero VAD, batch 8).
Each side is warmed on an excerpt, then runs ROUNDS times in alternating order; seconds are the median (range).

Word timestamps: sentences built from separately spoken words with known start times (each word synthesised
alone, its silence trimmed, 0.12 s between words, 1 s between sentences): median absolute error of the word starts.

    python bench/long_form.py [--sentences 12] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from common import alternate, spread

from bench.report import write_section
from core.audio import SAMPLE_RATE, load_audio
from core.models import resolve_model
from core.speech import DecodingOptions, Transcriber
from core.text import error_rates
from core.workspace import Workspace

THREADS = os.cpu_count() or 2
PAUSE_S = 0.8
WORD_GAP_S, SENTENCE_GAP_S = 0.12, 1.0
SNRS = (None, 10, 0)  # dB; None = clean

SENTENCES = {
    "en": [
        "my brother keeps a small boat near the old bridge",
        "every summer we paint it blue and row to the island",
        "the library closes early on the first monday of the month",
        "a tall man in a grey coat asked me for directions",
        "she planted tomatoes and beans behind the garage",
        "the museum has a room full of ancient maps",
        "we missed the last bus and walked home in the rain",
        "his grandmother bakes bread with honey and oats",
        "the children built a snowman with a carrot nose",
        "our neighbour plays the violin every evening",
        "the pilot announced a short delay before landing",
        "a black cat slept all afternoon on the warm roof",
        "the river froze so we skated to the village",
        "please leave the keys under the red flower pot",
        "the doctor said to drink more water and rest",
        "they sold the farm and moved to a flat in the city",
    ],
    "nb": [
        "broren min har en liten båt ved den gamle brua",
        "hver sommer maler vi den blå og ror ut til øya",
        "biblioteket stenger tidlig den første mandagen i måneden",
        "en høy mann i grå frakk spurte meg om veien",
        "hun plantet tomater og bønner bak garasjen",
        "museet har et rom fullt av gamle kart",
        "vi rakk ikke siste buss og gikk hjem i regnet",
        "bestemoren hans baker brød med honning og havre",
        "barna bygde en snømann med gulrot som nese",
        "naboen vår spiller fiolin hver kveld",
        "piloten sa at landingen ble litt forsinket",
        "en svart katt sov hele ettermiddagen på det varme taket",
        "elva frøs så vi gikk på skøyter til bygda",
        "legg nøklene under den røde blomsterpotten",
        "legen sa at jeg måtte drikke mer vann og hvile",
        "de solgte gården og flyttet til en leilighet i byen",
    ],
}
VOICES = {"en": "en-us", "nb": "nb"}
WHISPER_CODES = {"en": "en", "nb": "no"}


def spoken(text: str, voice: str, folder: Path) -> np.ndarray:
    path = folder / "say.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True)
    return load_audio(path)


def trimmed(samples: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    """The samples from the first to the last above `threshold`: a word without espeak-ng's silences."""
    loud = np.flatnonzero(np.abs(samples) > threshold)
    return samples[loud[0] : loud[-1] + 1] if len(loud) else samples


def with_noise(samples: np.ndarray, snr_db: float | None, seed: int = 0) -> np.ndarray:
    if snr_db is None:
        return samples
    speech = samples[np.abs(samples) > 0.01]
    power = float(np.mean(speech**2)) / 10 ** (snr_db / 10)
    noise = np.random.default_rng(seed).normal(0, np.sqrt(power), len(samples))
    return np.clip(samples + noise, -1, 1).astype(np.float32)


def recording(language: str, count: int, folder: Path) -> tuple[np.ndarray, str, np.ndarray]:
    """(samples, script, whether each sample is inside a spoken sentence: espeak-ng's own edges trimmed)."""
    pause = np.zeros(int(PAUSE_S * SAMPLE_RATE), np.float32)
    texts = SENTENCES[language][:count]
    parts, truth = [], []
    for text in texts:
        audio = trimmed(spoken(text, VOICES[language], folder), 0.002)
        parts += [audio, pause]
        truth += [np.ones(len(audio), bool), np.zeros(len(pause), bool)]
    return np.concatenate(parts), " ".join(texts), np.concatenate(truth)


def detector_scores(audio: np.ndarray, truth: np.ndarray) -> dict[str, str]:
    """{detector: 'recall / precision'} of its speech regions against the known speech samples."""
    from core.audio.vad import DETECTORS, speech_regions

    out = {}
    for detector in DETECTORS:
        found = np.zeros(len(audio), bool)
        for start, end in speech_regions(audio, detector=detector):
            found[start:end] = True
        recall = (found & truth).sum() / max(1, truth.sum())
        precision = (found & truth).sum() / max(1, found.sum())
        out[detector] = f"{100 * recall:.0f}% / {100 * precision:.0f}%"
    return out


def word_clip(language: str, count: int, folder: Path) -> tuple[np.ndarray, list[tuple[str, float]]]:
    """Sentences made of separately spoken words: (samples, [(word, start s)])."""
    parts, known, at = [np.zeros(int(SENTENCE_GAP_S * SAMPLE_RATE), np.float32)], [], SENTENCE_GAP_S
    for text in SENTENCES[language][:count]:
        for word in text.split():
            audio = trimmed(spoken(word, VOICES[language], folder))
            known.append((word, at))
            parts += [audio, np.zeros(int(WORD_GAP_S * SAMPLE_RATE), np.float32)]
            at += len(audio) / SAMPLE_RATE + WORD_GAP_S
        parts.append(np.zeros(int(SENTENCE_GAP_S * SAMPLE_RATE), np.float32))
        at += SENTENCE_GAP_S
    return np.concatenate(parts), known


def start_errors(known: list[tuple[str, float]], timed: list[tuple[str, float]]) -> list[float]:
    """|start − known start| for each known word matched in order by its spelling (a word not heard is skipped)."""
    errors, j = [], 0
    spelled = [(w.strip(" .,!?").lower(), s) for w, s in timed]
    for word, start in known:
        for k in range(j, min(j + 4, len(spelled))):  # look a few words ahead: a misheard word is passed over
            if spelled[k][0] == word:
                errors.append(abs(spelled[k][1] - start))
                j = k + 1
                break
    return errors


def sides(workspace: Workspace, language: str, folder: Path):
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    ct2 = str(Path(resolve_model("whisper-base", workspace)).parent / "whisper-base-ct2")
    ours = Transcriber("whisper-base", workspace, language=language)
    fw = WhisperModel(ct2, device="cpu", compute_type="int8", cpu_threads=THREADS)
    batched = BatchedInferencePipeline(model=fw)
    path = folder / "recording.wav"

    def run_ours(audio):
        sf.write(path, audio, SAMPLE_RATE)
        return ours.transcribe_file(path, options=DecodingOptions()).text

    def faster(**kwargs):
        return lambda audio: " ".join(s.text.strip() for s in fw.transcribe(audio, language=language, **kwargs)[0])

    def faster_batched(audio):
        return " ".join(s.text.strip() for s in batched.transcribe(audio, language=language)[0])

    contestants = {
        "ours: defaults (beam 5, fallback, Silero VAD)": run_ours,
        "faster-whisper `transcribe` (beam 5)": faster(),
        "faster-whisper `transcribe`, `vad_filter=True`": faster(vad_filter=True),
        "faster-whisper `BatchedInferencePipeline`": faster_batched,
    }
    return contestants, ours, fw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sentences", type=int, default=16, help="sentences per recording (at most 16)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per condition")
    parser.add_argument("--home", help="workspace (default $STUDIO_HOME or ./workspace): whisper-base is made there")
    args = parser.parse_args()
    workspace = Workspace.open(args.home)
    tables, verdicts, word_rows, vad_rows = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for language in ("en", "nb"):
            code = WHISPER_CODES[language]
            clean, script, truth = recording(language, args.sentences, folder)
            contestants, ours, fw = sides(workspace, code, folder)
            for fn in contestants.values():
                fn(clean[: 15 * SAMPLE_RATE])  # warm-up: first calls pay one-off set-up costs
            for snr in SNRS:
                audio = with_noise(clean, snr)
                times = alternate({n: (lambda f=f, a=audio: f(a)) for n, f in contestants.items()}, args.rounds, False)
                texts = alternate.outputs
                wers = {n: 100 * error_rates([script], [texts[n]])["wer"] for n in contestants}
                label = "clean" if snr is None else f"{snr} dB SNR"
                scores = detector_scores(audio, truth)
                vad_rows.append(f"| {language}, {label} | {scores['energy']} | {scores['silero']} |")
                rows = [f"| {n} | {wers[n]:.1f}% | {spread(times[n], 1)} |" for n in contestants]
                tables.append(
                    f"**{language}, {label}** ({len(audio) / SAMPLE_RATE:.0f} s):\n\n| side | WER | seconds |\n"
                    "|---|---:|---:|\n" + "\n".join(rows)
                )
                names = list(contestants)
                best_peer = min(wers[n] for n in names[1:])
                beam5 = statistics.median(times[names[1]])
                wer_ok, time_ok = wers[names[0]] <= best_peer + 1e-9, statistics.median(times[names[0]]) <= beam5
                verdicts.append(
                    f"| {language}, {label} | {wers[names[0]]:.1f}% vs {best_peer:.1f}% | "
                    f"{'met' if wer_ok else 'missed'} | {statistics.median(times[names[0]]):.1f} s vs {beam5:.1f} s | "
                    f"{'met' if time_ok else 'missed'} |"
                )
            samples, known = word_clip(language, min(args.sentences, 8), folder)
            sf.write(folder / "words.wav", samples, SAMPLE_RATE)
            transcript = ours.transcribe_file(folder / "words.wav", options=DecodingOptions(word_timestamps=True))
            mine = start_errors(known, [(w.word, w.start) for s in transcript.segments for w in s.words])
            segments, _ = fw.transcribe(samples, language=code, word_timestamps=True)
            theirs = start_errors(known, [(w.word, w.start) for s in segments for w in s.words])
            for name, errors in (("ours", mine), ("faster-whisper `word_timestamps=True`", theirs)):
                median = statistics.median(errors) if errors else float("nan")
                verdict = "met" if name == "ours" and median <= 0.1 else ("missed" if name == "ours" else "–")
                word_rows.append(
                    f"| {language} | {name} | {len(errors)} of {len(known)} | {median:.3f} s | "
                    f"{np.percentile(errors, 90) if errors else float('nan'):.3f} s | {verdict} |"
                )
    body = f"""## Long recordings and word timestamps (`bench/long_form.py`)

Espeak-ng recordings of {args.sentences} free sentences with {PAUSE_S} s pauses (text-disjoint from the training
templates), English and Norwegian, clean and with white noise at 10 dB and 0 dB SNR; whisper-base's CTranslate2
file, int8, {THREADS} CPU threads, language given, on every side; seconds are the median (range) of {args.rounds}
alternating rounds after a warm-up; WER against the script. Reduced from the issue's 40 sentences to
{args.sentences} so that the whole run fits on 2 shared cores.

**Goal: our WER at most faster-whisper's best, in no more time than its beam-5 `transcribe`.**

| condition | WER: ours vs best peer | WER goal | time: ours vs beam-5 `transcribe` | time goal |
|---|---|---|---|---|
{chr(10).join(verdicts)}

{(chr(10) * 2).join(tables)}

**Voice detectors** on the same recordings: speech recall / precision of their regions (padded by 0.25 s, so
precision below 100% is expected) against the known spoken samples.

| condition | energy | Silero |
|---|---:|---:|
{chr(10).join(vad_rows)}

**Word timestamps** (goal: median start error ≤ 0.1 s): words spoken one by one and joined with {WORD_GAP_S} s
between words and {SENTENCE_GAP_S} s between sentences, so every start is known; a word counts when it is heard
as spelled.

| language | side | words matched | median start error | p90 | goal |
|---|---|---:|---:|---:|---|
{chr(10).join(word_rows)}"""
    write_section("long_form", body)
    print(body)


if __name__ == "__main__":
    main()
