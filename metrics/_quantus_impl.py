"""Plumbing between bench's tensors and Quantus 0.6 (used by metrics.quantus_metrics).

Quantus takes numpy batches, a raw nn.Module and an `explain_func(model, inputs, targets)`;
it draws from numpy's global RNG and normalises a whole batch by one max. The helpers here
run it deterministically (seeded, RNG state restored), per-sample, and in chunks.

Quantus orders features with `np.argsort(a)`, numpy's default unstable sort, and attribution
maps have many exact ties (zeros on MNIST's background: ~350 of 784 pixels for IG with a
Gaussian baseline). numpy 1.26 sorts with AVX-512 code where the CPU has it and with introsort
where it does not, and the two put tied pixels in different orders, so the same maps gave
different scores on two machines (Quantus monotonicity correlation of ig_gaussian on the
published MNIST CNN board: 0.198 vs 0.150). Inside `run_quantus`, `np.argsort` defaults to
kind="stable": ties keep pixel order on every machine.
https://github.com/understandable-machine-intelligence-lab/Quantus
"""

from __future__ import annotations

import contextlib
import functools
import threading
import warnings

import numpy as np
import torch

from bench.contract.metrics import AttrBatch, MetricContext

FAST = dict(return_aggregate=False, disable_warnings=True, display_progressbar=False)


def normalise_per_sample(a: np.ndarray, **kwargs) -> np.ndarray:
    """Divide each map (axis 0 = sample) by its own max |a|; all-zero maps stay zero."""
    m = np.abs(a).reshape(len(a), -1).max(1).reshape(-1, *[1] * (a.ndim - 1))
    return np.divide(a, m, out=np.zeros_like(a), where=m > 0)


NORM = dict(normalise=True, normalise_func=normalise_per_sample)


def quantus_explain_func(explain_fn, device, explain_model_fn=None, base=None):
    """Wrap explain_fn(x, target) -> attr as Quantus' explain_func(model, inputs, targets).

    Args:
        explain_fn: AttrBatch.explain_fn, bound to the trained model.
        device: where x and targets go before the call.
        explain_model_fn: optional (model, x, target) -> attr that uses the model Quantus
            passes (MPRT's randomised copies) directly.
        base: the module explain_fn uses; a different model passed by Quantus has its
            weights loaded into `base` for the call and restored after (in a finally).
    Returns:
        explain_func(model, inputs, targets, **kwargs) -> float32 np.ndarray shaped like inputs.
    """
    def explain_func(model, inputs, targets, **kwargs):
        x = torch.as_tensor(np.asarray(inputs), dtype=torch.float32, device=device)
        t = torch.as_tensor(np.asarray(targets), dtype=torch.long, device=device).view(-1)
        if explain_model_fn is not None:
            return explain_model_fn(model, x, t).detach().float().cpu().numpy()
        if base is None or model is base:
            return explain_fn(x, t).detach().float().cpu().numpy()
        saved = {k: v.clone() for k, v in base.state_dict().items()}
        try:
            base.load_state_dict(model.state_dict())
            return explain_fn(x, t).detach().float().cpu().numpy()
        finally:
            base.load_state_dict(saved)

    return explain_func


_ARGSORT_LOCK = threading.Lock()
_argsort_users = 0
_numpy_argsort = np.argsort


@functools.wraps(_numpy_argsort)
def _stable_argsort(a, axis=-1, kind=None, order=None, **kw):
    return _numpy_argsort(a, axis=axis, kind="stable" if kind is None else kind, order=order, **kw)


@contextlib.contextmanager
def stable_argsort():
    """`np.argsort` without a `kind` sorts stably while inside (see the module docstring).

    numpy's module attribute is swapped (Quantus calls `np.argsort` at run time); a count kept
    under a lock restores it when the last user leaves, so overlapping threads are safe.
    """
    global _argsort_users
    with _ARGSORT_LOCK:
        _argsort_users += 1
        np.argsort = _stable_argsort
    try:
        yield
    finally:
        with _ARGSORT_LOCK:
            _argsort_users -= 1
            if _argsort_users == 0:
                np.argsort = _numpy_argsort


def run_quantus(name: str, b: AttrBatch, ctx: MetricContext, init: dict, *, softmax: bool,
                explain: bool = False, batch_size: int = 128, call=None, **kw):
    """Run quantus.<name>(**init) on b in chunks of `batch_size` rows, seeded with ctx.seed.

    Args:
        init: the metric's constructor arguments (FAST is added: no aggregate, no warnings,
            no progress bar).
        softmax: Quantus' model-output switch (probabilities or logits).
        explain: pass b.explain_fn as explain_func (required for re-explaining metrics).
        call: optional call(metric, chunk_kwargs, rows) replacing the plain call (MPRT).
    Returns:
        the list of Quantus' raw per-chunk outputs.
    """
    import quantus

    if explain and b.explain_fn is None:
        raise ValueError(f"quantus {name} re-explains inputs: AttrBatch.explain_fn is required")
    device = getattr(ctx.oracle, "device", "cpu")
    x, y, a = (t.detach().cpu().numpy() for t in (b.x, b.explained, b.attr.float()))
    np_state, torch_state = np.random.get_state(), torch.random.get_rng_state()
    np.random.seed(ctx.seed)
    torch.manual_seed(ctx.seed)
    outs = []
    try:
        with warnings.catch_warnings(), stable_argsort():
            warnings.simplefilter("ignore")
            m = getattr(quantus, name)(**init, **FAST)
            for lo in range(0, len(x), batch_size):
                rows = slice(lo, lo + batch_size)
                args = dict(model=ctx.oracle.unwrap(), x_batch=x[rows], y_batch=y[rows], a_batch=a[rows],
                            channel_first=True, softmax=softmax, device=str(device),
                            batch_size=len(x[rows]), **kw)
                if explain:
                    args["explain_func"] = quantus_explain_func(b.explain_fn, device)
                outs.append(call(m, args, rows) if call else m(**args))
    finally:
        np.random.set_state(np_state)
        torch.random.set_rng_state(torch_state)
    return outs


def as_scores(outs) -> torch.Tensor:
    """Concatenate per-chunk scores into float64 (N,), non-finite values as NaN."""
    s = np.concatenate([np.asarray(o, dtype=np.float64).reshape(-1) for o in outs]) if outs else np.zeros(0)
    s[~np.isfinite(s)] = np.nan
    return torch.from_numpy(s)


def ssim_2d(shape):
    """Quantus-style similarity_func: SSIM of each pair of rows as (C,H,W) images, not flat rows."""
    from skimage.metrics import structural_similarity

    def img(v):
        return v.reshape(shape)[0] if shape[0] == 1 else v.reshape(shape)

    def sim(a, b, batched=True, **kwargs):
        out = []
        for aa, bb in zip(np.atleast_2d(a), np.atleast_2d(b), strict=True):
            rng = float(max(aa.max(), bb.max()) - min(aa.min(), bb.min()))
            out.append(np.nan if rng <= 0 else structural_similarity(
                img(aa), img(bb), data_range=rng, channel_axis=None if shape[0] == 1 else 0))
        return np.asarray(out)

    return sim


def foreground_spearman(foreground: np.ndarray):
    """Quantus-style similarity_func: Spearman rank correlation over each row's foreground pixels.

    Args:
        foreground: bool (N, D), e.g. x > 0; rows with fewer than 3 foreground pixels, or a
            constant map there, give NaN. Called with the same N rows (one chunk) each time.
    """
    from scipy.stats import spearmanr

    def sim(a, b, batched=True, **kwargs):
        a, b = np.atleast_2d(a), np.atleast_2d(b)
        if a.shape != foreground.shape:
            raise ValueError(f"foreground mask {foreground.shape} does not match maps {a.shape}")
        out = np.full(len(a), np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i, m in enumerate(foreground):
                if m.sum() >= 3:
                    out[i] = spearmanr(a[i, m], b[i, m])[0]
        return out

    return sim
