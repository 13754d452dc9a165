"""Trained resources of the plausibility metrics: autoencoders and an independent classifier.

Autoencoders as in Van Looveren & Klaise 2019 (https://arxiv.org/abs/1907.02584): one per
class (trained on that class's training images only) plus one on all classes. The second
classifier is the oracle of Hvilshoej et al. 2021 (https://arxiv.org/abs/2105.08148): an
MLP, so it shares neither architecture nor seed with the convolutional model explained.

Both are trained on `data.train` only; their relative paths are
`autoencoders/<dataset>/ae-<key>.pt` and `second_classifier/<dataset>/mlp-<key>.pt`, where
`key` hashes (architecture, training settings, dataset, seed, format), looked up in the
shipped reference weights, then in `<cache_dir>` (bench.checkpoints). Plain state dicts,
loaded with `torch.load(weights_only=True)`; a JSON sidecar keeps test errors/accuracy and seconds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from bench.contract import MetricContext, Normalized, weights_hash

CACHE_FORMAT = 1
SECOND_SEED_OFFSET = 1009  # the second classifier's seed = run seed + this (never the model's)


@dataclass(frozen=True)
class AESettings:
    """How the autoencoders are built and trained (all of it enters the cache key).

    Class AEs see ~5k images each: `class_epochs` passes; the all-class AE sees 50k:
    `all_epochs` passes. Adam, MSE on [0,1] pixels, OneCycle learning rate.
    """

    latent: int = 16
    channels: tuple[int, int] = (16, 32)
    class_epochs: int = 6
    all_epochs: int = 2
    batch_size: int = 64
    lr: float = 3e-3


AE_SETTINGS = AESettings()
MLP_HIDDEN = (256, 256)
# the fields of bench.config.TrainConfig, all of them (they enter the cache key)
MLP_TRAIN = dict(epochs=4, batch_size=128, lr=3e-3, schedule="onecycle", weight_decay=0.0, augment=False)


def build_autoencoder(s: AESettings = AE_SETTINGS) -> nn.Sequential:
    """Conv encoder (28 -> 14 -> 7) to a dense latent, mirrored decoder, sigmoid output."""
    c1, c2 = s.channels
    return nn.Sequential(
        nn.Conv2d(1, c1, 3, 2, 1), nn.ReLU(), nn.Conv2d(c1, c2, 3, 2, 1), nn.ReLU(),
        nn.Flatten(), nn.Linear(c2 * 49, s.latent),
        nn.Linear(s.latent, c2 * 49), nn.ReLU(), nn.Unflatten(1, (c2, 7, 7)),
        nn.ConvTranspose2d(c2, c1, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(c1, 1, 4, 2, 1),
        nn.Sigmoid())


def build_second_classifier(n_classes: int = 10) -> nn.Module:
    """MLP 784-256-256-n_classes on normalised pixels (no convolutions, unlike the model)."""
    h1, h2 = MLP_HIDDEN
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, h1), nn.ReLU(), nn.Linear(h1, h2), nn.ReLU(),
                        nn.Linear(h2, n_classes))
    return Normalized(net, 0.1307, 0.3081, cam_layer="1")


def _key(arch: str, settings: dict, dataset: str, seed: int) -> str:
    blob = json.dumps(dict(arch=arch, settings=settings, dataset=dataset, seed=seed, fmt=CACHE_FORMAT),
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def train_autoencoder(ae: nn.Module, x: torch.Tensor, epochs: int, s: AESettings, seed: int,
                      device) -> nn.Module:
    """Fit `ae` to reconstruct `x` (MSE), Adam with a OneCycle schedule; returns it in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    ae.to(device).train()
    steps = (len(x) + s.batch_size - 1) // s.batch_size
    opt = torch.optim.Adam(ae.parameters(), lr=s.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=s.lr, epochs=epochs, steps_per_epoch=steps)
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(s.batch_size):
            xb = x[idx].to(device)
            opt.zero_grad(set_to_none=True)
            ((ae(xb) - xb) ** 2).mean().backward()
            opt.step()
            sched.step()
    return ae.eval()


@torch.no_grad()
def recon_error(ae: nn.Module, x: torch.Tensor, device, batch_size: int = 1024) -> torch.Tensor:
    """Squared L2 reconstruction error per row, float64 (N,) on cpu."""
    out = [((ae(xb.to(device)) - xb.to(device)) ** 2).flatten(1).sum(1).double().cpu()
           for xb in x.split(batch_size)]
    return torch.cat(out) if out else torch.empty(0, dtype=torch.float64)


def load_or_train_autoencoders(ctx: MetricContext, s: AESettings = AE_SETTINGS) -> tuple[nn.ModuleDict, dict]:
    """AEs "0".."K-1" (one per class) and "all", from reference weights, cache, or trained now."""
    data, dataset, seed, device = ctx.data, ctx.dataset, ctx.seed, torch.device(ctx.device)
    n_classes = len(data.classes)
    names = [str(c) for c in range(n_classes)] + ["all"]

    def build() -> nn.ModuleDict:
        aes = nn.ModuleDict()
        for i, n in enumerate(names):
            torch.manual_seed(seed * 1000 + i)
            aes[n] = build_autoencoder(s)
        return aes

    def train(aes: nn.ModuleDict) -> dict:
        t0, c0 = time.perf_counter(), time.process_time()
        xtr, ytr = data.train.x, data.train.y
        for i, n in enumerate(tqdm(names, desc="train autoencoders", leave=False, disable=not ctx.progress)):
            x_n = xtr if n == "all" else xtr[ytr == int(n)]
            epochs = s.all_epochs if n == "all" else s.class_epochs
            train_autoencoder(aes[n], x_n, epochs, s, seed * 1000 + i, device)
        seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
        xte, yte = data.test.x, data.test.y
        test_mse = {n: float(recon_error(aes[n], xte if n == "all" else xte[yte == int(n)],
                                         device).mean()) for n in names}
        return dict(settings=dataclasses.asdict(s), dataset=dataset, seed=seed, device=str(device),
                    train_seconds=round(seconds, 2), train_cpu_seconds=round(cpu_seconds, 2),
                    test_recon_sq_l2=test_mse, n_params_each=sum(p.numel() for p in aes["all"].parameters()))

    key = _key(repr(build_autoencoder(s)), dataclasses.asdict(s), dataset, seed)
    rel = f"autoencoders/{dataset}/ae-{key}.pt"
    aes, meta = ctx.checkpoint(rel, build, train)
    aes.to(device).eval()
    for p in aes.parameters():
        p.requires_grad_(False)
    meta = dict(meta, cache_key=key, weights_sha256=weights_hash(aes))
    return aes, meta


def load_or_train_second_classifier(ctx: MetricContext) -> tuple[nn.Module, dict]:
    """The independent MLP classifier (seed = seed + SECOND_SEED_OFFSET), cached, with metadata."""
    data, dataset, device = ctx.data, ctx.dataset, torch.device(ctx.device)
    seed2 = ctx.seed + SECOND_SEED_OFFSET

    def build() -> nn.Module:
        torch.manual_seed(seed2)
        return build_second_classifier(len(data.classes))

    def train(model: nn.Module) -> dict:
        c0 = time.process_time()
        meta = ctx.train_classifier(model, MLP_TRAIN, seed2)
        meta.update(train_cpu_seconds=round(time.process_time() - c0, 2), model="mlp", hidden=list(MLP_HIDDEN),
                    dataset=dataset, seed=seed2, train=dict(MLP_TRAIN), device=str(device),
                    n_params=sum(p.numel() for p in model.parameters()))
        return meta

    key = _key(repr(build()), dict(MLP_TRAIN), dataset, seed2)
    rel = f"second_classifier/{dataset}/mlp-{key}.pt"
    model, meta = ctx.checkpoint(rel, build, train)
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    meta = dict(meta, cache_key=key, weights_sha256=weights_hash(model))
    return model, meta
