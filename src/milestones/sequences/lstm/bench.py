"""Our from-scratch LSTM against `nn.LSTM` (same weights), forward + backward, for `milestones bench`."""

from __future__ import annotations

import torch
from torch import nn

from milestones.core.bench import best_time
from milestones.sequences.lstm.model import LSTM


def benchmark(quick: bool = False) -> list[dict]:
    batch, length, hidden, input_size = (4, 10, 16, 8) if quick else (32, 100, 128, 32)
    torch.manual_seed(0)
    ours = LSTM(input_size, hidden, batch_first=True)
    reference = nn.LSTM(input_size, hidden, batch_first=True)
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(batch, length, input_size)

    def step(model: nn.Module):
        return lambda: model(x)[0].sum().backward()

    ours_s, reference_s = best_time(step(ours)), best_time(step(reference))
    return [{"case": f"LSTM forward+backward, batch {batch}, length {length}, hidden {hidden}",
             "ours": 1e3 * ours_s, "reference": 1e3 * reference_s, "reference_name": "nn.LSTM",
             "unit": "ms", "slowdown": ours_s / reference_s}]
