"""Train, evaluate and cache classifiers.

The checkpoint's relative path is `models/<dataset>/<model>-<key>.pt`, where `key` hashes
(model name, model params, dataset, seed, training settings, format version); it is looked up
in the shipped reference weights, then in `<cache_dir>` (bench.checkpoints). Checkpoints are
plain state dicts loaded with `torch.load(weights_only=True)`; a JSON sidecar keeps the test
accuracy and training time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time

import torch
from torch import nn
from tqdm.auto import tqdm

from bench import checkpoints
from bench.contract.models import weights_hash
from bench.models import MODELS

CACHE_FORMAT = 2  # 2: the model's initial weights are seeded (1 took the caller's RNG state)
AUGMENT_VERSION = 2  # 2: per-image zero-padded shifts (1 rolled the whole batch by one offset)
LATER_FIELDS = ("max_steps", "eval_every", "val_target", "patience")  # in the key only when set


def cache_key(model: str, model_params: dict, dataset: str, seed: int, train_cfg) -> str:
    train = dataclasses.asdict(train_cfg)
    for name in LATER_FIELDS:  # added later: keys of checkpoints without them stay as they were
        if train.get(name) is None:
            train.pop(name, None)
    parts = dict(model=model, params=model_params, dataset=dataset, seed=seed, train=train, fmt=CACHE_FORMAT)
    if train_cfg.augment:  # only augmented checkpoints depend on it: every other key stays as it was
        parts["augment_version"] = AUGMENT_VERSION
    blob = json.dumps(parts, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device, batch_size: int = 512) -> float:
    model.eval()
    correct = 0
    for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
        correct += int((model(xb.to(device)).argmax(1).cpu() == yb).sum())
    return correct / len(y)


def fit(model: nn.Module, data, cfg, seed: int, device, progress: bool = True) -> dict:
    """Train `model` on data.train with Adam (+ OneCycle if cfg.schedule == "onecycle").

    With early stopping (cfg.eval_every / val_target / patience) the validation split is scored
    every `eval_every` steps (default: each epoch) and at the end; training stops once val
    accuracy reaches `val_target` or has not improved for `patience` passes; with `patience`
    the model keeps the weights of its best pass (else its last). The test set is scored once,
    after training.

    Args:
        model, data, cfg, seed, device: the classifier (trained in place), a bench Dataset, a
            TrainConfig, the shuffling/augmentation seed, where to train; progress: a bar.
    Returns:
        steps, epochs (steps / steps per epoch), stop reason, train_seconds (wall, validation
        passes included) and train_cpu_seconds (this process, all threads), val_accuracy, test_accuracy; with early stopping also best_step and
        val_history ([step, val accuracy] per pass).
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model.to(device).train()
    x, y = data.train.x, data.train.y
    steps_per_epoch = (len(y) + cfg.batch_size - 1) // cfg.batch_size
    total = cfg.epochs * steps_per_epoch if cfg.max_steps is None else min(cfg.max_steps, cfg.epochs * steps_per_epoch)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = None
    if cfg.schedule == "onecycle":
        # total_steps = epochs * steps_per_epoch is what OneCycleLR(epochs=, steps_per_epoch=) computes
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total)
    elif cfg.schedule != "constant":
        raise ValueError(f"unknown schedule {cfg.schedule!r} (onecycle | constant)")
    loss_fn = nn.CrossEntropyLoss()
    stopper = _Stopper(model, data.val, cfg, device, steps_per_epoch) if cfg.early_stopping else None
    t0, c0 = time.perf_counter(), time.process_time()
    step = 0
    for epoch in range(cfg.epochs):
        if step >= total or (stopper and stopper.done):
            break
        model.train()
        perm = torch.randperm(len(y), generator=gen)
        bar = tqdm(perm.split(cfg.batch_size), desc=f"train epoch {epoch + 1}/{cfg.epochs}",
                   disable=not progress, leave=False)
        for idx in bar:
            if step >= total:  # train.max_steps reached
                break
            step += 1
            xb, yb = x[idx].to(device), y[idx].to(device)
            if cfg.augment:
                xb = _shift(xb, gen)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
            if stopper and (step % stopper.every == 0 or step == total) and stopper.check(step):
                break
    stop = "max_steps" if cfg.max_steps is not None and step >= cfg.max_steps else "epochs"
    out = dict(steps=step, epochs=round(step / steps_per_epoch, 3), stop=stop)
    if stopper:
        if not stopper.history or stopper.history[-1][0] != step:
            stopper.check(step)
        out.update(val_accuracy=stopper.restore(), stop=stopper.reason or stop, best_step=stopper.best_step,
                   val_history=stopper.history)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    model.eval()
    if not stopper:
        out["val_accuracy"] = accuracy(model, data.val.x, data.val.y, device)
    return dict(out, train_seconds=round(seconds, 2), train_cpu_seconds=round(cpu, 2),
                test_accuracy=accuracy(model, data.test.x, data.test.y, device))


class _Stopper:
    """Early stopping on the validation split: when to score it, when to stop, the best weights."""

    def __init__(self, model: nn.Module, val, cfg, device, steps_per_epoch: int) -> None:
        self.model, self.val, self.cfg, self.device = model, val, cfg, device
        self.every = cfg.eval_every or steps_per_epoch
        self.history, self.best, self.best_step, self.best_state = [], -1.0, 0, None
        self.stale, self.reason, self.done = 0, None, False

    def check(self, step: int) -> bool:
        """Score val after `step`; True when training should stop."""
        acc = accuracy(self.model, self.val.x, self.val.y, self.device)
        self.model.train()
        self.history.append([step, acc])
        if acc > self.best:
            self.best, self.best_step, self.stale = acc, step, 0
            if self.cfg.patience is not None:
                self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        else:
            self.stale += 1
        if self.cfg.val_target is not None and acc >= self.cfg.val_target:
            self.reason = "val_target"
        elif self.cfg.patience is not None and self.stale >= self.cfg.patience:
            self.reason = "patience"
        self.done = self.reason is not None
        return self.done

    def restore(self) -> float:
        """Load the best pass's weights back into the model (with patience); their val accuracy."""
        if self.best_state is None:
            return self.history[-1][1]
        self.model.load_state_dict(self.best_state)
        return self.best


def _shift(xb: torch.Tensor, gen: torch.Generator, max_shift: int = 2) -> torch.Tensor:
    """Translate each image by its own random offset of up to `max_shift` pixels, zero-padded.

    Light augmentation (`train.augment`). Pixels shifted out are dropped and the vacated border
    is 0 (black), never wrapped around from the other side.
    """
    n, _, h, w = xb.shape
    m = max_shift
    padded = torch.nn.functional.pad(xb, (m, m, m, m))
    offsets = torch.randint(-m, m + 1, (n, 2), generator=gen).tolist()
    return torch.stack([padded[i, :, m + dy:m + dy + h, m + dx:m + dx + w] for i, (dy, dx) in enumerate(offsets)])


def checkpoint_relpath(cfg) -> tuple[str, str]:
    """(relative checkpoint path, cache key) of the classifier a config trains."""
    key = cache_key(cfg.model, cfg.model_params, cfg.dataset, cfg.seed, cfg.train)
    return f"models/{cfg.dataset}/{cfg.model}-{key}.pt", key


def load_or_train(cfg, data, device, progress: bool = True, force: bool = False):
    """The trained model for this config and its metadata.

    From the shipped reference weights when the config matches a published board (unless
    `cfg.retrain`), else from the local cache, else trained now (see bench.checkpoints).
    `force` trains anew even when cached.
    """
    rel, key = checkpoint_relpath(cfg)

    def build():
        torch.manual_seed(cfg.seed)  # initial weights from the seed alone, whoever calls (run, train, tests)
        return MODELS.get(cfg.model)(n_classes=len(data.classes), **cfg.model_params)

    def train(model):
        meta = fit(model, data, cfg.train, cfg.seed, device, progress)
        meta.update(model=cfg.model, model_params=cfg.model_params, dataset=cfg.dataset,
                    seed=cfg.seed, train=dataclasses.asdict(cfg.train), device=str(device),
                    n_params=sum(p.numel() for p in model.parameters()))
        return meta

    model, meta = checkpoints.load_or_build(rel, build, train, cfg.cache_dir, use_reference=not cfg.retrain,
                                            force=force)
    model.to(device).eval()
    meta = dict(meta, cache_key=key, weights_sha256=weights_hash(model))
    return model, meta
