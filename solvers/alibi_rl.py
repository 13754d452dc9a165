"""alibi CounterfactualRL, Samoilescu et al. 2021 (https://arxiv.org/abs/2106.02597).

An amortised black-box solver: `fit` trains an actor-critic (DDPG) once against the model,
in the latent space of an autoencoder; afterwards a counterfactual for any error costs one
actor forward and a decode, plus the rows alibi predicts (the instance and its
counterfactual: 2 queries per error). Its cost is therefore a large one-off training bill
and a tiny per-instance one; the harness records the bill (`fit_queries`, `fit_seconds`) and
the counterfactual table adds the amortised cost per error and the break-even point.

- **Backend:** alibi's PyTorch backend, in this process. alibi imports TensorFlow whenever it
  can (`alibi.utils.frameworks`); `_import_cfrl` blocks that import while alibi loads, so
  TensorFlow never enters the main process (tested). The TF-1 alibi solvers keep their worker.
- **Queries:** alibi's `predictor` is the oracle's probabilities, so every training row is
  counted: the labels of the `fit_rows` training images alibi predicts once, then
  `batch_size` noised counterfactuals per training step.
- **Autoencoder:** alibi's MNISTEncoder/MNISTDecoder (conv, tanh latent of `latent_dim`),
  trained with BCE and Adam as in alibi's MNIST example, on the training split only. It is
  a cached checkpoint (`cfrl_autoencoders/<dataset>/ae-<key>.pt`, keyed by architecture,
  settings, dataset and seed; reference weights first, then the cache, loaded with
  `weights_only=True`). Training it queries no model.
- **Actor-critic:** also a cached checkpoint (`cfrl_actors/<dataset>/actor-<key>.pt`), keyed
  by the explained model's weights hash, the autoencoder's and every parameter, with what
  its training cost (oracle rows, seconds) in the sidecar. A run that loads it reports that
  recorded bill as the entry's `fit_queries`/`fit_seconds` (`Method.fit_cost`): the cost of
  the method does not vanish because someone else paid it; provenance says where it came from.
- **Randomness:** alibi seeds the global torch/numpy/random generators and draws from them;
  `_own_rng` gives it a private copy of that state and restores the caller's afterwards.
- **L2 floor:** the counterfactual is a decoded image, so it differs from x by at least the
  autoencoder's reconstruction error on every pixel (recorded as `ae_test_recon_l2`).

Defaults, measured on the default CNN's 91 MNIST errors (2-core CPU, alibi's autoencoder
with latent 32 after 1 epoch: test reconstruction error 33 in squared L2): the actor
collapses onto one or two classes for the first ~2,000 steps (validity 5-19%), then learns
the target: 32% at 3,000, 25% at 4,000, 73% at 5,000, 81% at 6,000, 76% at 7,000 steps,
about 55 s per 1,000 steps of 100 rows. Default: 6,000 steps (600k training rows, ~6 min
here, paid once per model: the actor is cached). alibi's MNIST example trains 50,000 steps
with latent 64 and a 50-epoch autoencoder; the `full` preset uses those steps and latent.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import random
import sys
import time
from dataclasses import dataclass
from typing import Annotated

import numpy as np
import torch
from torch import nn

from bench.contract import ConfigError, Range
from bench.contract.methods import CounterfactualSolver
from bench.contract.models import weights_hash
from bench.contract.results import CFResult
from solvers import SOLVERS

CACHE_FORMAT = 1
MIN_STEPS = 20


@dataclass(frozen=True)
class RLParams:
    """Args:
    latent_dim: autoencoder latent size (the actor's action space).
    ae_epochs: autoencoder training passes over the training split.
    ae_batch_size: autoencoder batch size.
    ae_lr: autoencoder Adam learning rate.
    train_steps: actor-critic training steps (each predicts `batch_size` rows; >= 20).
    batch_size: rows per training step.
    coeff_sparsity: weight of the L1 sparsity loss (alibi's MNIST example: 7.5).
    coeff_consistency: weight of the latent consistency loss (example: 0).
    fit_rows: training images alibi samples from (their labels are predicted once); 0 = all.
    seed: seed of the autoencoder and of alibi's training.
    """

    latent_dim: Annotated[int, Range("[1, 4096]")] = 32
    ae_epochs: Annotated[int, Range("[1, 1000]")] = 1
    ae_batch_size: Annotated[int, Range("[1, 65536]")] = 64
    ae_lr: Annotated[float, Range("(0, 10]")] = 1e-3
    train_steps: Annotated[int, Range("[20, 10**7]")] = 6000
    batch_size: Annotated[int, Range("[1, 65536]")] = 100
    coeff_sparsity: Annotated[float, Range("[0, 1e6]")] = 7.5
    coeff_consistency: Annotated[float, Range("[0, 1e6]")] = 0.0
    fit_rows: Annotated[int, Range("[0, 10**8]")] = 0
    seed: Annotated[int, Range("[0, 2**32)")] = 0

    def __post_init__(self) -> None:
        for key in ("latent_dim", "ae_epochs", "ae_batch_size", "batch_size"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be >= 1, got {getattr(self, key)!r}")
        if self.train_steps < MIN_STEPS:  # alibi updates the actor and critic only after step 10
            raise ConfigError(f"train_steps must be >= {MIN_STEPS}, got {self.train_steps!r}")
        if self.ae_lr <= 0:
            raise ConfigError(f"ae_lr must be > 0, got {self.ae_lr!r}")
        for key in ("coeff_sparsity", "coeff_consistency", "fit_rows", "seed"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key} must be >= 0, got {getattr(self, key)!r}")


def _import_cfrl():
    """alibi's CounterfactualRL and its MNIST autoencoder, imported with TensorFlow blocked.

    alibi tries `import tensorflow` at import time and uses it when present; a None entry in
    sys.modules makes that import fail, so alibi loads its PyTorch backend only. The block
    is lifted afterwards (a process that imports TensorFlow itself later still can).
    """
    blocked = "tensorflow" not in sys.modules
    if blocked:
        sys.modules["tensorflow"] = None  # type: ignore[assignment]
    try:
        from alibi.explainers import cfrl_base
        from alibi.models.pytorch.cfrl_models import MNISTDecoder, MNISTEncoder
    finally:
        if blocked:
            del sys.modules["tensorflow"]
    return cfrl_base, MNISTEncoder, MNISTDecoder


@contextlib.contextmanager
def _own_rng(seed: int):
    """Run alibi on a private global RNG state (it seeds and draws from torch/numpy/random)."""
    saved = (torch.get_rng_state(), np.random.get_state(), random.getstate(),
             torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    saved_cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        torch.set_rng_state(saved[0])
        np.random.set_state(saved[1])
        random.setstate(saved[2])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[3], saved[4]
        if saved_cuda is not None:
            torch.cuda.set_rng_state_all(saved_cuda)


class _AE(nn.Module):
    def __init__(self, encoder: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def _train_ae(ae: nn.Module, x: torch.Tensor, p: RLParams, device: torch.device) -> None:
    """BCE reconstruction, Adam (alibi's MNIST example), reshuffled each epoch from the seed."""
    gen = torch.Generator().manual_seed(p.seed)
    opt = torch.optim.Adam(ae.parameters(), lr=p.ae_lr)
    ae.to(device).train()
    for _ in range(p.ae_epochs):
        for idx in torch.randperm(len(x), generator=gen).split(p.ae_batch_size):
            xb = x[idx].to(device)
            opt.zero_grad(set_to_none=True)
            nn.functional.binary_cross_entropy(ae(xb), xb).backward()
            opt.step()
    ae.eval()


@SOLVERS.register()
class AlibiRL(CounterfactualSolver):
    """alibi CounterfactualRL (PyTorch backend): actor-critic trained once in fit(), one pass per error."""

    Params = RLParams
    version = "1"
    white_box = False
    paper = "https://arxiv.org/abs/2106.02597"

    _cfrl = None
    _n_classes = 0
    ae_meta: dict | None = None
    actor_meta: dict | None = None

    def _autoencoder(self, x_train: torch.Tensor, device: torch.device) -> nn.Module:
        """The cached (or now trained) autoencoder; its metadata lands in `ae_meta`."""
        _, encoder_cls, decoder_cls = _import_cfrl()
        p, ctx = self.params, self.ctx
        settings = dict(latent_dim=p.latent_dim, epochs=p.ae_epochs, batch_size=p.ae_batch_size, lr=p.ae_lr,
                        loss="bce", optimizer="adam")
        dataset = getattr(ctx, "dataset", "unknown")

        def build() -> nn.Module:
            torch.manual_seed(p.seed)
            return _AE(encoder_cls(p.latent_dim), decoder_cls(p.latent_dim))

        def train(ae: nn.Module) -> dict:
            t0 = time.perf_counter()
            _train_ae(ae, x_train, p, device)
            seconds = time.perf_counter() - t0
            return dict(settings=settings, dataset=dataset, seed=p.seed, device=str(device),
                        train_seconds=round(seconds, 2), test_recon_l2=_recon_l2(ae, ctx, device))

        blob = json.dumps(dict(arch=repr(build()), settings=settings, dataset=dataset, seed=p.seed,
                               fmt=CACHE_FORMAT), sort_keys=True)
        key = hashlib.sha256(blob.encode()).hexdigest()[:16]
        rel = f"cfrl_autoencoders/{dataset}/ae-{key}.pt"
        if ctx is None:  # used on its own: train now, cache nothing
            ae = build()
            meta = dict(train(ae), source="trained", cached=False, relpath=rel)
        else:  # memoised (one load per run) and listed among the run's checkpoints (publish pins it)
            ae, meta = ctx.once(f"alibi_rl:{rel}", lambda: ctx.checkpoint(rel, build, train))
        ae.to(device).eval()
        self.ae_meta = dict(meta, cache_key=key, weights_sha256=weights_hash(ae))
        return ae

    def fit(self, x_train: torch.Tensor, y_train: torch.Tensor) -> "AlibiRL":
        """Load or train the autoencoder, then train alibi's actor-critic through the oracle.

        Args:
            x_train: float32 (N,C,H,W) in [0,1].
            y_train: int64 (N,) labels (only their number of classes is used).
        Returns:
            self; `self.oracle` counted every row the training predicted.
        """
        with _own_rng(self.params.seed):  # the caller's global generators come back untouched
            return self._fit(x_train, y_train)

    def _fit(self, x_train: torch.Tensor, y_train: torch.Tensor) -> "AlibiRL":
        p, ctx, device = self.params, self.ctx, self.oracle.device
        cfrl_base, _, _ = _import_cfrl()
        ae = self._autoencoder(x_train, device)
        self._n_classes = int(y_train.max()) + 1
        x = x_train if not p.fit_rows else x_train[: p.fit_rows]
        shape, oracle = tuple(x.shape[1:]), self.oracle

        def predictor(a: np.ndarray) -> np.ndarray:
            batch = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).reshape(-1, *shape)
            return oracle.probs(batch.to(device)).cpu().numpy()

        def explainer():
            # alibi builds (seeded) its actor, critic and their optimizers itself: its constructor
            # cannot take given networks (it makes the optimizers before reading them, alibi 0.9.6)
            cfrl = cfrl_base.CounterfactualRL(
                predictor=predictor, encoder=ae.encoder, decoder=ae.decoder, latent_dim=p.latent_dim,
                coeff_sparsity=p.coeff_sparsity, coeff_consistency=p.coeff_consistency, backend="pytorch",
                seed=p.seed, train_steps=p.train_steps, batch_size=p.batch_size, num_workers=0)
            cfrl.params["device"] = device  # alibi would pick CUDA whenever it exists
            for name in ("encoder", "decoder", "actor", "critic"):
                cfrl.params[name].to(device)
            return cfrl

        owner = {}  # the explainer whose actor and critic the checkpoint module holds

        def build() -> nn.ModuleDict:
            owner["cfrl"] = cfrl = explainer()
            return nn.ModuleDict(dict(actor=cfrl.params["actor"], critic=cfrl.params["critic"]))

        def train(nets: nn.ModuleDict) -> dict:
            rows, t0 = oracle.total_rows, time.perf_counter()
            with _quiet_tqdm(cfrl_base):
                owner["cfrl"].fit(X=x.detach().cpu().numpy())
            return dict(train_queries=float(oracle.total_rows - rows), train_seconds=round(time.perf_counter() - t0, 2),
                        train_steps=p.train_steps, batch_size=p.batch_size, fit_rows=len(x), device=str(device),
                        threads=torch.get_num_threads(), model_sha256=getattr(ctx, "model_sha256", ""),
                        ae_sha256=self.ae_meta["weights_sha256"])

        model_sha = getattr(ctx, "model_sha256", "")
        if not model_sha:  # nothing to key a cached actor by (a method used on its own): train now
            nets = build()
            meta = dict(train(nets), source="trained", cached=False)
        else:  # keyed by the model, the autoencoder and every parameter: a cache hit is the same training
            blob = json.dumps(dict(model=model_sha, ae=self.ae_meta["weights_sha256"], params=dataclasses.asdict(p),
                                   rows=len(x), fmt=CACHE_FORMAT), sort_keys=True)
            rel = f"cfrl_actors/{ctx.dataset}/actor-{hashlib.sha256(blob.encode()).hexdigest()[:16]}.pt"
            nets, meta = ctx.once(f"alibi_rl:{rel}", lambda: ctx.checkpoint(rel, build, train))
        self.actor_meta = meta = dict(meta, weights_sha256=weights_hash(nets))
        # what the training cost when it ran (now, or when the cached actor was trained): the
        # harness reports this as the entry's one-off fit bill, not the zero rows of a cache hit
        self.fit_cost = (float(meta["train_queries"]), float(meta["train_seconds"]))
        keep = ("source", "relpath", "cache_key", "weights_sha256", "train_seconds", "train_queries", "test_recon_l2",
                "train_steps", "device", "threads", "settings")
        self.fit_info = {name: {k: v for k, v in m.items() if k in keep}
                         for name, m in (("autoencoder", self.ae_meta), ("actor_critic", meta))}
        cfrl = explainer()  # a fresh explainer with the trained (or loaded) networks' weights
        for name in ("actor", "critic"):
            cfrl.params[name].load_state_dict(nets[name].state_dict())
            cfrl.params[name].to(device).eval()
        self._cfrl = cfrl
        return self

    def __call__(self, x: torch.Tensor, target: torch.Tensor) -> CFResult:
        """Counterfactuals for one batch: one actor pass each (2 counted rows per error).

        Args:
            x: float32 (N,C,H,W) in [0,1].
            target: int64 (N,) the class each counterfactual must reach.
        Returns:
            CFResult; every row has a decoded counterfactual, `success` says whether it reached target.
        """
        if self._cfrl is None:
            raise RuntimeError("AlibiRL: call fit(x_train, y_train) before the first batch (it trains the actor)")
        cfrl_base, _, _ = _import_cfrl()
        t0 = time.perf_counter()
        y_t = np.eye(self._n_classes, dtype=np.float32)[target.cpu().numpy()]
        with _own_rng(self.params.seed), _quiet_tqdm(cfrl_base):
            out = self._cfrl.explain(X=x.detach().cpu().float().numpy(), Y_t=y_t, batch_size=len(x))
        seconds = (time.perf_counter() - t0) / max(len(x), 1)
        x_cf = torch.from_numpy(np.asarray(out.data["cf"]["X"], dtype=np.float32)).reshape(x.shape)
        cls = torch.as_tensor(np.asarray(out.data["cf"]["class"]).reshape(-1))
        ok = cls == target.cpu()
        reasons = ["" if o else f"alibi_rl counterfactual has class {int(c)}" for o, c in zip(ok.tolist(), cls)]
        return CFResult(x_cf=x_cf.to(x).clamp(0.0, 1.0), success=ok.to(x.device), reason=reasons,
                        seconds=[seconds] * len(x), info=dict(ae=self.ae_meta, actor=self.actor_meta))


@contextlib.contextmanager
def _quiet_tqdm(cfrl_base):
    """alibi's training loop draws a tqdm bar per call; the harness draws its own."""
    original = cfrl_base.tqdm
    cfrl_base.tqdm = functools.partial(original, disable=True)
    try:
        yield
    finally:
        cfrl_base.tqdm = original


@torch.no_grad()
def _recon_l2(ae: nn.Module, ctx, device: torch.device) -> float | None:
    """Mean L2 reconstruction error on the test split: the floor of this solver's L2."""
    data = getattr(ctx, "data", None)
    if data is None:
        return None
    x = data.test.x[:2000].to(device)
    return round(float((ae(x) - x).flatten(1).norm(dim=1).mean()), 4)

