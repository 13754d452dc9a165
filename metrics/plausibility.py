"""Plausibility of counterfactuals: a kNN distance ratio, IM1/IM2, and an independent oracle.

- knn_ratio: mean L2 distance of x_cf to its KNN_K nearest training images of the target
  class over the same for x (in the spirit of CARLA's yNN; lower = closer to real digits).
- im1, im2: Van Looveren & Klaise 2019 (https://arxiv.org/abs/1907.02584), with small
  convolutional autoencoders trained on the training split (metrics._plausibility_models).
- im1_class: IM1 with each autoencoder's error divided by that autoencoder's own mean test
  reconstruction error on its class (the class AEs' test errors range from 2.99 for digit 1 to
  15.99 for digit 8 on MNIST: raw IM1 favours targets whose AE is easy). Each term then reads
  "times the error of a typical real digit of that class"; 1 = as plausible as typical digits.
- l2_ae: L2 from x_cf to the all-class autoencoder's reconstruction of x. A decoder-based solver
  (alibi_rl) can only output decoded images, so its plain L2 carries the decoder's reconstruction
  floor; against AE(x) the floor of a comparable decoder is taken out (bench's AE, not the solver's).
- oracle_agreement: Hvilshoej et al. 2021 (https://arxiv.org/abs/2105.08148), whose point is
  that IM1/IM2 reward tiny adversarial edits; an independent classifier is a second view.

Resources (training images by class, autoencoders, the second classifier) are built once
per run through `ctx.once`; `plausibility_provenance(ctx)` reports them. Each metric's
provenance hook loads its own resource when the run did not (every score came from the
store: the published boards' `plausibility` provenance was `{}` for that reason), so a board
always records the models its scores came from and their quality (per-class reconstruction
error, the second classifier's test accuracy).
"""

from __future__ import annotations

import torch
from torch import nn

from bench.contract.metrics import CFBatch, MetricContext, metric
from metrics import CF_METRICS
from metrics._plausibility_models import (
    load_or_train_autoencoders,
    load_or_train_second_classifier,
)

KNN_K = 5  # neighbours averaged by knn_ratio
KNN_CHUNK = 256  # query rows per cdist call
IM_EPS = 1e-8  # the epsilon in IM1's and IM2's denominators
AE_CHUNK = 1024  # rows per autoencoder / second-classifier forward pass

_KNN_KEY = "plausibility/knn_train"
_AE_KEY = "plausibility/autoencoders"
_CLF_KEY = "plausibility/second_classifier"


def _need_data(ctx: MetricContext) -> None:
    if ctx.data is None:
        raise ValueError("plausibility metrics need ctx.data (the dataset with a .train split)")


def train_by_class(ctx: MetricContext) -> dict[int, torch.Tensor]:
    """Training images grouped by class, flattened (n_c, D) on ctx.device (built once per run)."""
    _need_data(ctx)

    def build() -> dict[int, torch.Tensor]:
        x, y = ctx.data.train.x, ctx.data.train.y
        return {int(c): x[y == c].flatten(1).to(torch.device(ctx.device)) for c in y.unique()}

    return ctx.once(_KNN_KEY, build)


def knn_mean_distance(x: torch.Tensor, target: torch.Tensor, ref_by_class: dict[int, torch.Tensor],
                      k: int = KNN_K, chunk: int = KNN_CHUNK) -> torch.Tensor:
    """Mean L2 distance of each x[i] to its k nearest reference images of class target[i].

    Neighbours are found with torch.cdist (matrix-product form, fast), then their distances
    are recomputed exactly as norms of differences in float64.

    Args:
        x: (N,C,H,W) images in [0,1]. target: int64 (N,).
        ref_by_class: class -> flattened reference images (n_c, C*H*W), e.g. `train_by_class`.
        k: neighbours averaged. chunk: query rows per cdist call.
    Returns:
        float64 (N,) on cpu.
    """
    out = torch.empty(len(x), dtype=torch.float64)
    flat, target = x.flatten(1), target.cpu()
    for c in target.unique().tolist():
        ref = ref_by_class[c]
        for rows in (target == c).nonzero().squeeze(1).split(chunk):
            q = flat[rows.to(flat.device)].to(ref.device, ref.dtype)
            idx = torch.cdist(q, ref).topk(k, dim=1, largest=False).indices  # (n, k)
            exact = (q.double().unsqueeze(1) - ref[idx].double()).norm(dim=2)  # (n, k)
            out[rows] = exact.mean(1).cpu()
    return out


def knn_ratio_score(x: torch.Tensor, x_cf: torch.Tensor, target: torch.Tensor,
                    ref_by_class: dict[int, torch.Tensor], k: int = KNN_K) -> torch.Tensor:
    """knn_mean_distance(x_cf) / knn_mean_distance(x) (denominator clamped at IM_EPS).

    Returns:
        float64 (N,) on cpu: < 1 when x_cf is nearer real target-class digits than x was.
    """
    both = knn_mean_distance(torch.cat([x_cf, x.to(x_cf.device)]), torch.cat([target, target]).cpu(),
                             ref_by_class, k)
    return both[:len(x)] / both[len(x):].clamp_min(IM_EPS)


@torch.no_grad()
def recon_by_class(aes: nn.ModuleDict, x: torch.Tensor, cls: torch.Tensor | str) -> torch.Tensor:
    """AE_{cls[i]}(x[i]) row by row (cls a tensor), or AE_all(x) when cls == "all".

    Returns:
        float32 (N,C,H,W) on the autoencoders' device.
    """
    device = next(aes.parameters()).device
    x = x.to(device, torch.float32)
    if isinstance(cls, str):
        return torch.cat([aes[cls](c) for c in x.split(AE_CHUNK)]) if len(x) else x.clone()
    out, cls = torch.empty_like(x), cls.to(device)
    for c in cls.unique().tolist():
        rows = (cls == c).nonzero().squeeze(1)
        out[rows] = torch.cat([aes[str(c)](xc) for xc in x[rows].split(AE_CHUNK)])
    return out


def _sq(d: torch.Tensor) -> torch.Tensor:
    return d.double().flatten(1).pow(2).sum(1).cpu()


def im1_score(x_cf: torch.Tensor, target: torch.Tensor, original: torch.Tensor,
              aes: nn.ModuleDict, eps: float = IM_EPS) -> torch.Tensor:
    """IM1 = ||x_cf - AE_target(x_cf)||^2 / (||x_cf - AE_original(x_cf)||^2 + eps).

    Returns:
        float64 (N,) on cpu: < 1 when the target-class AE explains x_cf better.
    """
    x = x_cf.to(next(aes.parameters()).device, torch.float32)
    return _sq(x - recon_by_class(aes, x, target)) / (_sq(x - recon_by_class(aes, x, original)) + eps)


def im1_class_score(x_cf: torch.Tensor, target: torch.Tensor, original: torch.Tensor, aes: nn.ModuleDict,
                    test_error: dict, eps: float = IM_EPS) -> torch.Tensor:
    """IM1 normalised per class: (||x_cf - AE_t(x_cf)||^2 / e_t) / (||x_cf - AE_o(x_cf)||^2 / e_o + eps).

    Args:
        test_error: class name ("0".."K-1") -> e_c, AE_c's mean squared reconstruction error on the
            test images of class c (the autoencoders' `test_recon_sq_l2`).
    Returns:
        float64 (N,) on cpu: < 1 when x_cf is, relative to typical digits of each class, better explained
        by the target-class AE than by the original-class AE.
    """
    x = x_cf.to(next(aes.parameters()).device, torch.float32)
    e = lambda cls: torch.tensor([float(test_error[str(int(c))]) for c in cls.tolist()], dtype=torch.float64)  # noqa: E731
    num = _sq(x - recon_by_class(aes, x, target)) / e(target)
    return num / (_sq(x - recon_by_class(aes, x, original)) / e(original) + eps)


def l2_ae_score(x: torch.Tensor, x_cf: torch.Tensor, aes: nn.ModuleDict) -> torch.Tensor:
    """||x_cf - AE_all(x)||_2 (not squared), float64 (N,) on cpu."""
    ref = recon_by_class(aes, x, "all")
    return (x_cf.to(ref.device, torch.float32) - ref).double().flatten(1).norm(dim=1).cpu()


def im2_score(x_cf: torch.Tensor, target: torch.Tensor, aes: nn.ModuleDict,
              eps: float = IM_EPS) -> torch.Tensor:
    """IM2 = ||AE_target(x_cf) - AE_all(x_cf)||^2 / (||x_cf||_1 + eps).

    Returns:
        float64 (N,) on cpu: small when x_cf looks like a typical target-class digit.
    """
    x = x_cf.to(next(aes.parameters()).device, torch.float32)
    diff = recon_by_class(aes, x, target) - recon_by_class(aes, x, "all")
    return _sq(diff) / (x.double().flatten(1).abs().sum(1).cpu() + eps)


def autoencoders(ctx: MetricContext) -> tuple[nn.ModuleDict, dict]:
    """The run's autoencoders ("0".."K-1", "all") and their metadata, built once per run."""
    _need_data(ctx)
    return ctx.once(_AE_KEY, lambda: load_or_train_autoencoders(ctx))


def second_classifier(ctx: MetricContext) -> tuple[nn.Module, dict]:
    """The run's independent classifier and its metadata (test accuracy), built once per run."""
    _need_data(ctx)
    return ctx.once(_CLF_KEY, lambda: load_or_train_second_classifier(ctx))


def original_class(b: CFBatch, ctx: MetricContext) -> torch.Tensor:
    """The model's prediction for x (the class the counterfactual moves away from), int64 (N,)."""
    if ctx.oracle is None:
        raise ValueError("im1 needs ctx.oracle: the original class is the model's prediction for x")
    return ctx.oracle.predict(b.x).cpu()


def _provenance_with(build):
    """A metric's provenance hook: load its own resource (`build(ctx)`) if this run has not, then report
    every plausibility resource built so far under "plausibility" (the pipeline merges the hooks' dicts
    one after another, so each hook returns the whole section)."""

    def hook(ctx: MetricContext) -> dict:
        if ctx.data is not None:
            build(ctx)
        return {"plausibility": plausibility_provenance(ctx)}

    return hook


_provenance_knn = _provenance_with(train_by_class)
_provenance_ae = _provenance_with(autoencoders)
_provenance_clf = _provenance_with(second_classifier)


@metric(CF_METRICS, needs=("train_data",), provenance=_provenance_knn, higher_is_better=False, version="1", valid_only=True,
        definition=f"mean L2 from x_cf to its {KNN_K} nearest target-class training images / same for x")
def knn_ratio(b: CFBatch, ctx: MetricContext) -> torch.Tensor:
    """kNN distance ratio of x_cf over x (k = KNN_K, training split, target class)."""
    return knn_ratio_score(b.x, b.x_cf, b.target, train_by_class(ctx), KNN_K)


@metric(CF_METRICS, needs=("train_data",), provenance=_provenance_ae, higher_is_better=False, version="1", valid_only=True,
        definition=f"||x_cf - AE_target(x_cf)||^2 / (||x_cf - AE_original(x_cf)||^2 + {IM_EPS:g}); "
                   "original = the model's prediction for x")
def im1(b: CFBatch, ctx: MetricContext) -> torch.Tensor:
    """IM1 of Van Looveren & Klaise 2019 (class autoencoders of the training split)."""
    return im1_score(b.x_cf, b.target, original_class(b, ctx), autoencoders(ctx)[0])


@metric(CF_METRICS, needs=("train_data",), provenance=_provenance_ae, higher_is_better=False, version="1",
        valid_only=True,
        definition=f"(||x_cf - AE_target(x_cf)||^2 / e_target) / (||x_cf - AE_original(x_cf)||^2 / e_original + {IM_EPS:g}); "
                   "e_c = AE_c's mean squared reconstruction error on test images of class c")
def im1_class(b: CFBatch, ctx: MetricContext) -> torch.Tensor:
    """IM1 with each class autoencoder's error in units of its own test reconstruction error."""
    aes, meta = autoencoders(ctx)
    return im1_class_score(b.x_cf, b.target, original_class(b, ctx), aes, meta["test_recon_sq_l2"])


@metric(CF_METRICS, needs=("train_data",), provenance=_provenance_ae, higher_is_better=False, version="1",
        valid_only=True, definition="||x_cf - AE_all(x)||_2: L2 to the all-class autoencoder's reconstruction of x")
def l2_ae(b: CFBatch, ctx: MetricContext) -> torch.Tensor:
    """L2 of x_cf from AE_all(x), the distance a decoder-based solver can control (bench's AE as the decoder)."""
    return l2_ae_score(b.x, b.x_cf, autoencoders(ctx)[0])


@metric(CF_METRICS, needs=("train_data",), provenance=_provenance_ae, higher_is_better=False, version="1", valid_only=True,
        definition=f"||AE_target(x_cf) - AE_all(x_cf)||^2 / (||x_cf||_1 + {IM_EPS:g})")
def im2(b: CFBatch, ctx: MetricContext) -> torch.Tensor:
    """IM2 of Van Looveren & Klaise 2019 (class and all-class autoencoders)."""
    return im2_score(b.x_cf, b.target, autoencoders(ctx)[0])


@metric(CF_METRICS, needs=("train_data",), provenance=_provenance_clf, higher_is_better=True, version="1", valid_only=True,
        kind="proportion", definition="1 if an independently trained MLP (other seed) also assigns x_cf to target")
def oracle_agreement(b: CFBatch, ctx: MetricContext) -> torch.Tensor:
    """Oracle score of Hvilshoej et al. 2021: the second classifier agrees with the target."""
    clf = second_classifier(ctx)[0]
    device = next(clf.parameters()).device
    with torch.no_grad():
        pred = [clf(c.to(device, torch.float32)).argmax(1).cpu() for c in b.x_cf.split(AE_CHUNK)]
    pred = torch.cat(pred) if pred else torch.empty(0, dtype=torch.long)
    return (pred == b.target.cpu()).double()


def plausibility_provenance(ctx: MetricContext, build: bool = False) -> dict:
    """Metadata of the resources this run built (or all of them with build=True), for provenance.

    Args:
        ctx: the run's metric context. build: train/load resources not yet built.
    Returns:
        {"knn": {...}, "autoencoders": {...}, "second_classifier": {...}} for those built.
    """
    if build:
        train_by_class(ctx)
        autoencoders(ctx)
        second_classifier(ctx)
    out: dict = {}
    if _KNN_KEY in ctx.memo:
        out["knn"] = dict(k=KNN_K, reference="train", n_reference={
            c: len(v) for c, v in ctx.memo[_KNN_KEY].items()})
    if _AE_KEY in ctx.memo:
        out["autoencoders"] = dict(ctx.memo[_AE_KEY][1], eps=IM_EPS)
    if _CLF_KEY in ctx.memo:
        out["second_classifier"] = dict(ctx.memo[_CLF_KEY][1])
    return out
