"""A tiny training run on digits used by the machinery tests: DDP, resume and kill-and-resume.

usage: python train_tiny.py OUT STEPS [--resume] [--sleep SECONDS] [--dropout P]
Trains an MLP with Adam and dropout on random minibatches (a global batch of 64, split over the
processes under torchrun); writes OUT/curve.json (the logged loss per step) and OUT/weights.json.
"""

import argparse
import json
import time

import torch
from torch import nn

from milestones.core import Run
from milestones.core.data import load_digits

parser = argparse.ArgumentParser()
parser.add_argument("out")
parser.add_argument("steps", type=int)
parser.add_argument("--resume", action="store_true")
parser.add_argument("--sleep", type=float, default=0.0)
parser.add_argument("--dropout", type=float, default=0.1)
args = parser.parse_args()

torch.set_num_threads(1)
ctx = Run(args.out, seed=3, device="cpu", resume=args.resume, quiet=True, checkpoint_every_s=0.0)
data = load_digits()
x_all, y_all = data.x_train.flatten(1), data.y_train
model = nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Dropout(args.dropout), nn.Linear(32, 10))
net = ctx.wrap(model)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)


def step(i):
    index = torch.randint(len(x_all), (64,))  # the same global batch on every process
    x, y = ctx.shard(x_all[index]), ctx.shard(y_all[index])
    loss = nn.functional.cross_entropy(net(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    time.sleep(args.sleep)
    return {"loss": loss}


log = ctx.fit("tiny", args.steps, step, {"model": model, "optimizer": optimizer}, log_every=1)
if ctx.is_main:
    (ctx.out / "curve.json").write_text(json.dumps(log.series("loss")[1]))
    (ctx.out / "weights.json").write_text(json.dumps([p.tolist() for p in model.parameters()]))
ctx.close()
