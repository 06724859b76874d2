"""The two engines a Transcriber runs on, each with the methods the decoding policy (core/speech/decoding.py) and
the word timer (core/speech/words.py) ask for: `encode`, `decode` and `align`.

- `CTranslate2Whisper`: a CTranslate2 model (an export, or the installed whisper-base's own file), the engine
  faster-whisper runs on; `generate` gives its scores and no-speech probability, `align` its cross-attention path.
- `TransformersWhisper`: any transformers checkpoint; generation by `GenerationMixin.generate` from our prompt, the
  scores from one teacher-forced pass, the alignment by DTW over the alignment heads' cross-attention.
Both return the same records, so a window decodes the same way whichever file a model came as. Sampling (the
fallback's temperatures above 0) is seeded per window, so a window's text never depends on which other windows
share its batch (core/speech/batching.py puts different requests' windows in one batch).
"""

from __future__ import annotations

import os

import numpy as np
import torch

from core.audio.constants import MAX_TARGET_POSITIONS
from core.models.hf_folders import language_token_ids
from core.speech.decoding import Hypothesis

SAMPLING_SEED = 0  # sampling (fallback) is seeded per call: the same file gives the same transcript twice
MEDIAN_FILTER_WIDTH = 7  # encoder positions (7 × 20 ms) smoothed in the attention, as openai/whisper does


def _average_log_prob(sum_log_prob: float, tokens: int) -> float:
    """openai/whisper's average: the end-of-text token counts too, so an empty output is not perfect."""
    return sum_log_prob / (tokens + 1)


def _ctranslate2_length(prompt: int, new_tokens: int) -> int:
    """CTranslate2's `max_length` for `new_tokens` after a prompt: it generates at most min(max_length / 2,
    max_length − prompt) tokens (whisper.cc; openai/whisper's sample_len is also half the 448 positions)."""
    return min(MAX_TARGET_POSITIONS, max(2 * new_tokens, prompt + new_tokens))


class CTranslate2Whisper:
    """A CTranslate2 model: int8 on a CPU, float16 on a GPU (as the Transcriber asks)."""

    fits_context = True  # its encoder takes fewer frames than a 30 s window (the positions it needs, as whisper.cpp)

    def __init__(self, folder: str, device: str, compute_type: str = "default", tokenizer=None):
        import ctranslate2

        self.ctranslate2, self.tokenizer = ctranslate2, tokenizer
        # under torchrun each rank gets its share of the cores: torchrun sets OMP_NUM_THREADS (1 by default)
        threads = int(os.environ.get("OMP_NUM_THREADS") or 0) or os.cpu_count() or 1
        self.engine = ctranslate2.models.Whisper(
            folder, device=device, compute_type=compute_type, intra_threads=threads
        )

    def _storage(self, array: np.ndarray):
        return self.ctranslate2.StorageView.from_array(np.ascontiguousarray(array))

    def detect_language(self, features: np.ndarray) -> tuple[str, float]:
        return self.likely_languages(features, 1)[0]

    def likely_languages(self, features: np.ndarray, top: int) -> list[tuple[str, float]]:
        """The first window's `top` likeliest languages, (Whisper code, probability), likeliest first."""
        ranked = self.engine.detect_language(self._storage(np.asarray(features, np.float32)))[0]
        return [(token.strip("<|>"), probability) for token, probability in ranked[:top]]

    def encode(self, features: np.ndarray) -> np.ndarray:
        """(batch, positions, width) encoder output, on the CPU: windows that need another try are picked from it."""
        return np.asarray(self.engine.encode(self._storage(np.asarray(features, np.float32)), to_cpu=True))

    def decode(
        self, encoded, prompt: list[int], temperature: float, beams: int, best_of: int, max_new_tokens: int
    ) -> list[Hypothesis]:
        length = _ctranslate2_length(len(prompt), max_new_tokens)
        common = dict(max_length=length, return_scores=True, return_no_speech_prob=True)
        if temperature > 0:  # one window per call, each from the same seed: batch-independent samples
            how = dict(beam_size=1, num_hypotheses=best_of, sampling_topk=0, sampling_temperature=temperature)
            results = []
            for window in range(len(encoded)):
                self.ctranslate2.set_random_seed(SAMPLING_SEED)
                results += self.engine.generate(self._storage(encoded[window : window + 1]), [prompt], **how, **common)
        else:
            results = self.engine.generate(self._storage(encoded), [prompt] * len(encoded), beam_size=beams, **common)
        hypotheses = []
        for result in results:
            # scores are length-normalised sums (length penalty 1): score × tokens is the sum, as faster-whisper
            best = max(range(len(result.scores)), key=lambda k: result.scores[k])
            tokens = result.sequences_ids[best]
            average = _average_log_prob(result.scores[best] * len(tokens), len(tokens))
            text = self.tokenizer.decode(tokens, skip_special_tokens=True).strip()
            hypotheses.append(Hypothesis(tokens, text, average, result.no_speech_prob))
        return hypotheses

    def align(self, encoded, start_sequence: list[int], texts: list[list[int]], frames: list[int]):
        """Per window: (text index, encoder position) pairs of the alignment path, and each text token's
        probability. CTranslate2 adds <|notimestamps|> and <|endoftext|> around the text itself."""
        results = self.engine.align(
            self._storage(encoded), start_sequence, texts, frames, median_filter_width=MEDIAN_FILTER_WIDTH
        )
        out = []
        for result in results:
            pairs = np.asarray(result.alignments, dtype=np.int64).reshape(-1, 2)
            out.append((pairs[:, 0], pairs[:, 1], np.asarray(result.text_token_probs, np.float64)))
        return out


class TransformersWhisper:
    """A transformers WhisperForConditionalGeneration behind the same methods as CTranslate2Whisper."""

    fits_context = False  # transformers' Whisper encoder refuses anything but the full window's frames

    def __init__(self, model, tokenizer):
        self.model, self.tokenizer = model, tokenizer
        self.device = next(model.parameters()).device
        ids = tokenizer.convert_tokens_to_ids
        self.start, self.end, self.no_speech = ids("<|startoftranscript|>"), ids("<|endoftext|>"), ids("<|nospeech|>")
        self.language_ids = language_token_ids(tokenizer)  # <|en|> → id, for every language the model knows
        heads = getattr(model.generation_config, "alignment_heads", None)
        layers, per_layer = model.config.decoder_layers, model.config.decoder_attention_heads
        # without the base model's heads (a toy model): every head of the upper half, openai/whisper's default
        self.heads = (
            [tuple(h) for h in heads]
            if heads
            else [(layer, h) for layer in range(layers // 2, layers) for h in range(per_layer)]
        )

    def detect_language(self, features) -> tuple[str, float]:
        return self.likely_languages(features, 1)[0]

    @torch.inference_mode()
    def likely_languages(self, features, top: int) -> list[tuple[str, float]]:
        """The first window's `top` likeliest languages, (Whisper code, probability), likeliest first: the softmax
        of the first decoding step over the language tokens, as Whisper itself detects it."""
        inputs = torch.as_tensor(np.asarray(features[:1]), dtype=self.model.dtype, device=self.device)
        start = torch.tensor([[self.start]], device=self.device)
        logits = self.model(input_features=inputs, decoder_input_ids=start).logits[0, -1]
        probabilities = torch.softmax(logits[list(self.language_ids.values())].float(), dim=-1)
        tokens = list(self.language_ids)
        ranked = torch.argsort(probabilities, descending=True)[:top].tolist()
        return [(tokens[k].strip("<|>"), float(probabilities[k])) for k in ranked]

    @torch.inference_mode()
    def encode(self, features) -> torch.Tensor:
        inputs = torch.as_tensor(np.asarray(features), dtype=self.model.dtype, device=self.device)
        return self.model.get_encoder()(inputs).last_hidden_state

    @torch.inference_mode()
    def decode(
        self, encoded, prompt: list[int], temperature: float, beams: int, best_of: int, max_new_tokens: int
    ) -> list[Hypothesis]:
        if temperature == 0:
            return self._decode(encoded, prompt, temperature, beams, best_of, max_new_tokens)
        # one window per call, each from the same seed: batch-independent samples
        windows = [encoded[k : k + 1] for k in range(len(encoded))]
        return [h for w in windows for h in self._decode(w, prompt, temperature, beams, best_of, max_new_tokens)]

    @torch.inference_mode()
    def _decode(
        self, encoded, prompt: list[int], temperature: float, beams: int, best_of: int, max_new_tokens: int
    ) -> list[Hypothesis]:
        from transformers import GenerationMixin
        from transformers.modeling_outputs import BaseModelOutput

        count = len(encoded)
        how = (
            dict(do_sample=True, temperature=temperature, top_k=0, num_beams=1, num_return_sequences=best_of)
            if temperature > 0
            else dict(do_sample=False, num_beams=beams)
        )
        repeat = how.get("num_return_sequences", 1)
        prompts = torch.tensor([prompt] * count, device=self.device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(SAMPLING_SEED)
            # Whisper's own generate builds its prompt from language/task; the base one starts from ours
            sequences = GenerationMixin.generate(
                self.model,
                encoder_outputs=BaseModelOutput(last_hidden_state=encoded),
                decoder_input_ids=prompts,
                decoder_attention_mask=torch.ones_like(prompts),
                max_length=min(MAX_TARGET_POSITIONS, len(prompt) + max_new_tokens),
                **how,
            )
        tokens = [self._text_tokens(row[len(prompt) :]) for row in sequences.tolist()]
        sums, no_speech = self._score(encoded.repeat_interleave(repeat, 0), prompt, tokens)
        hypotheses = []
        for window in range(count):
            rows = range(window * repeat, (window + 1) * repeat)
            best = max(rows, key=lambda r: _average_log_prob(sums[r], len(tokens[r])))
            text = self.tokenizer.decode(tokens[best], skip_special_tokens=True).strip()
            average = _average_log_prob(sums[best], len(tokens[best]))
            hypotheses.append(Hypothesis(tokens[best], text, average, no_speech[best]))
        return hypotheses

    def _text_tokens(self, generated: list[int]) -> list[int]:
        return generated[: generated.index(self.end)] if self.end in generated else generated

    def _score(self, encoded, prompt: list[int], tokens: list[list[int]]) -> tuple[list[float], list[float]]:
        """Sum of log-probabilities of each row's tokens and its end-of-text (untempered, as openai/whisper), and
        the no-speech probability at the start token: one teacher-forced pass for the whole batch."""
        longest = max(len(t) for t in tokens) + 1
        rows = [prompt + t + [self.end] * (longest - len(t)) for t in tokens]
        inputs = torch.tensor(rows, device=self.device)
        logits = self.model(encoder_outputs=(encoded,), decoder_input_ids=inputs).logits.float()
        log_probs = torch.log_softmax(logits[:, len(prompt) - 1 : -1], dim=-1)
        picked = log_probs.gather(-1, inputs[:, len(prompt) :, None])[..., 0]
        sums = [float(picked[r, : len(t) + 1].sum()) for r, t in enumerate(tokens)]
        start = torch.softmax(logits[:, prompt.index(self.start)], dim=-1)[:, self.no_speech]
        return sums, start.tolist()

    @torch.inference_mode()
    def align(self, encoded, start_sequence: list[int], texts: list[list[int]], frames: list[int]):
        """openai/whisper's find_alignment: the alignment heads' cross-attention over the audio, normalised per
        position, median-filtered, averaged over heads; DTW finds the monotonic path through it."""
        from core.speech.words import dynamic_time_warp, median_filter

        no_timestamps = self.tokenizer.convert_tokens_to_ids("<|notimestamps|>")
        implementation = self.model.config._attn_implementation
        self.model.set_attn_implementation("eager")  # sdpa returns no attention weights
        try:
            out = []
            for window, text in enumerate(texts):
                tokens = [*start_sequence, no_timestamps, *text, self.end]
                inputs = torch.tensor([tokens], device=self.device)
                output = self.model(
                    encoder_outputs=(encoded[window : window + 1],), decoder_input_ids=inputs, output_attentions=True
                )
                weights = torch.stack([output.cross_attentions[layer][0, h] for layer, h in self.heads]).float()
                weights = weights[:, :, : frames[window] // 2].cpu().numpy()  # 2 mel frames per encoder position
                weights = (weights - weights.mean(axis=-2, keepdims=True)) / (
                    weights.std(axis=-2, keepdims=True) + 1e-9
                )
                matrix = median_filter(weights, MEDIAN_FILTER_WIDTH).mean(axis=0)[len(start_sequence) : -1]
                text_indices, time_indices = dynamic_time_warp(-matrix)
                probs = torch.softmax(output.logits[0, len(start_sequence) : -2].float(), dim=-1)
                token_probs = probs[torch.arange(len(text)), torch.tensor(text, dtype=torch.long)].cpu().numpy()
                out.append((text_indices, time_indices, token_probs.astype(np.float64)))
            return out
        finally:
            self.model.set_attn_implementation(implementation)
