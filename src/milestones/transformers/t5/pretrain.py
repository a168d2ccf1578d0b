"""T5's unsupervised pre-training on Shakespeare, characters as tokens: the recipe and its cache entry.

Pre-training is the slow part of the Section 3.3 comparison and depends only on the objective, the
model and the seed, so each pre-trained model is an entry of the shared cache (milestones.core.cache):
built once per machine, then read. The entry holds the weights (safetensors) and what the training
measured (JSON): the mean input and target lengths, the processor seconds per step, the final loss.

The vocabulary: PAD (0), EOS (1), SENTINELS sentinel tokens (2 .. SENTINELS + 1), then every character
of the works (`CharTokenizer`, shifted past the special ids). The text is split once: the first
TRAIN_SHARE of the characters for pre-training and fine-tuning, the rest held out for scoring.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from milestones.core import cache
from milestones.core.data import shakespeare
from milestones.transformers.t5 import model as t5_model
from milestones.transformers.t5.model import PAD, T5, T5Config, corrupt_spans, random_spans

SENTINELS = 24  # enough for every span of a window (i.i.d. masking of 64 characters makes 10)
TRAIN_SHARE = 0.9


class Text:
    """Shakespeare as token ids, with T5's special tokens in front of the characters."""

    def __init__(self):
        text = shakespeare.shakespeare_text()
        self.chars = shakespeare.CharTokenizer.from_text(text)
        self.offset = 2 + SENTINELS
        self.ids = self.encode(text)
        self.split = int(TRAIN_SHARE * len(self.ids))
        self.sentinels = list(range(2, 2 + SENTINELS))

    @property
    def vocab_size(self) -> int:
        return self.offset + len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        """Characters -> ids; an ASCII text through a 128-entry table (the works: 5M characters in 0.1 s)."""
        if not text.isascii():
            return self.chars.encode(text) + self.offset
        table = torch.zeros(128, dtype=torch.int64)
        table[[ord(ch) for ch in self.chars.vocab]] = torch.arange(len(self.chars)) + self.offset
        return table[torch.frombuffer(bytearray(text.encode("ascii")), dtype=torch.uint8).long()]

    def windows(self, count: int, length: int, held_out: bool = False,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """`count` random windows of `length` tokens (count, length), from the training or the held-out text."""
        low, high = (self.split, len(self.ids)) if held_out else (0, self.split)
        starts = torch.randint(low, high - length, (count,), generator=generator)
        return torch.stack([self.ids[s:s + length] for s in starts.tolist()])


def pad(rows: list[torch.Tensor], value: int = PAD) -> torch.Tensor:
    """Right-pad 1-D tensors into one (B, longest) tensor."""
    return torch.nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=value)


def corrupted_batch(text: Text, batch_size: int, length: int, mean_span_length: float, noise_density: float,
                    generator: torch.Generator | None = None):
    """Span corruption of `batch_size` training windows: ids, mask, labels (IGNORE at padding)."""
    windows = text.windows(batch_size, length, generator=generator)
    dropped = random_spans(length, noise_density, mean_span_length, generator, rows=batch_size)
    pairs = [corrupt_spans(w, d, text.sentinels) for w, d in zip(windows, dropped)]
    ids = pad([i for i, _ in pairs])
    labels = pad([t for _, t in pairs], t5_model.IGNORE)
    return ids, (ids != PAD).long(), labels


@dataclass
class PretrainConfig:
    objective: str  # "span" (mean span length 3, T5's choice) or "iid" (every dropped token its own span)
    seed: int
    steps: int
    batch_size: int
    length: int  # characters per window
    noise_density: float
    learning_rate: float  # Adam's
    d_model: int
    heads: int
    d_kv: int
    d_ff: int
    layers: int

    @property
    def mean_span_length(self) -> float:
        return {"span": 3.0, "iid": 1.0}[self.objective]


def model_config(cfg: PretrainConfig, vocab_size: int) -> T5Config:
    return T5Config(vocab_size=vocab_size, d_model=cfg.d_model, d_kv=cfg.d_kv, d_ff=cfg.d_ff, layers=cfg.layers,
                    decoder_layers=cfg.layers, heads=cfg.heads, buckets=16, max_distance=64, dropout=0.0)


def pretrained(cfg: PretrainConfig, text: Text) -> tuple[T5, dict]:
    """The pre-trained model of `cfg` and what its training measured, from the cache (built if absent)."""
    folder = cache.cached("t5-pretrain", asdict(cfg), [t5_model, shakespeare, sys.modules[__name__]],
                          lambda folder, config: _build(folder, cfg, text))
    model = T5(model_config(cfg, text.vocab_size))
    model.load_state_dict(load_file(folder / "model.safetensors"))
    return model, json.loads((folder / "measured.json").read_text())


def _build(folder: Path, cfg: PretrainConfig, text: Text) -> None:
    """Pre-train on one thread: the processor time per step is then the cost of the objective's lengths."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(cfg.seed)
        generator = torch.Generator().manual_seed(cfg.seed)
        model = T5(model_config(cfg, text.vocab_size))
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate, fused=True)
        input_tokens = target_tokens = seconds = 0.0
        losses = []
        for _ in range(cfg.steps):
            ids, mask, labels = corrupted_batch(text, cfg.batch_size, cfg.length, cfg.mean_span_length,
                                                cfg.noise_density, generator)
            start = time.process_time()  # the step itself, not the making of the batch
            loss = model.loss(ids, mask, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seconds += time.process_time() - start
            losses.append(loss.item())
            input_tokens += mask.sum().item() / cfg.batch_size
            target_tokens += (labels != t5_model.IGNORE).sum().item() / cfg.batch_size
    finally:
        torch.set_num_threads(threads)
    save_file(model.state_dict(), folder / "model.safetensors")
    tail = losses[-max(1, cfg.steps // 10):]
    measured = {"mean_input_length": input_tokens / cfg.steps, "mean_target_length": target_tokens / cfg.steps,
                "seconds_per_step": seconds / cfg.steps, "final_loss": sum(tail) / len(tail), "steps": cfg.steps}
    (folder / "measured.json").write_text(json.dumps(measured, indent=2) + "\n")
