"""Captum-style attribution methods: subclass `CaptumAdapter`, implement `attribute(x, target, contrast)`.

    from bench.contract import CaptumAdapter, forward_args, logit_fn, register_attribution

    @register_attribution("my_saliency")
    class MySaliency(CaptumAdapter):
        '''The gradient of the explained logit (this line is the summary `bench list` shows).'''

        def attribute(self, x, target, contrast):
            from captum.attr import Saliency  # captum: imported by the method, never by the contract

            return Saliency(logit_fn(self.oracle)).attribute(
                x, target=target, additional_forward_args=forward_args(contrast))

`CaptumAdapter` does the rest of the call (device and dtype, grad mode, captum's warnings, the
typed AttrResult). `logit_fn(oracle)` is the forward function captum sees: every row goes
through the oracle and is counted; `OracleModule(oracle)` is the same as an nn.Module, for
captum methods that hook the model's layers (DeepLift, GuidedBackprop, GuidedGradCam);
`forward_args(contrast)` is captum's `additional_forward_args` for an optional contrast class.
The built-in captum, zennit and control methods (solvers/attr_*.py) are built on it.

Contrast ("margin" mode). Every adapter built on `logit_fn` answers a call with `contrast` Q
by explaining the margin logit_target - logit_Q instead of logit_target: the forward function
returns logits minus the Q logit (captum passes Q as `additional_forward_args` and expands it
alongside the inputs), so column `target` of its output is that margin. Methods record what
they did with `contrast` in `contrast_mode` ("margin", "native", "ignored") and in
`AttrResult.info["contrast"]`.

Batching. `BATCH_ROWS` rows per model pass: on the 2-core CPU machine, forward+backward cost
per row was flat from 64 to 256 rows and rose by 35-90% at 512-1024 rows, so 256 keeps the
per-call overhead of captum low without leaving that plateau.
"""

from __future__ import annotations

import abc
import contextlib
import warnings
import zlib
from typing import Callable, ClassVar, Iterator

import numpy as np
import torch
from torch import nn

from bench.contract.methods import AttributionMethod
from bench.contract.oracle import Oracle
from bench.contract.results import AttrResult

BATCH_ROWS = 256


def margin(logits: torch.Tensor, contrast: torch.Tensor | None) -> torch.Tensor:
    """Logits minus the contrast logit of each row (unchanged when `contrast` is None)."""
    if contrast is None:
        return logits
    return logits - logits.gather(1, contrast.view(-1, 1).to(logits.device))


def logit_fn(oracle: Oracle, grad: bool = True) -> Callable[..., torch.Tensor]:
    """A captum forward function `(x, contrast=None) -> logits` that counts through `oracle`.

    Args:
        oracle: the oracle; rows go through `oracle.logits_grad` (grad=True, white-box only)
            or `oracle.logits` (grad=False: no graph, works on a black-box oracle).
        grad: whether gradients must flow through the returned logits.
    Returns:
        The callable; with `contrast` it returns `margin(logits, contrast)`.
    """
    forward = oracle.forward_fn() if grad else oracle.logits

    def fn(x: torch.Tensor, contrast: torch.Tensor | None = None) -> torch.Tensor:
        return margin(forward(x), contrast)

    return fn


class OracleModule(nn.Module):
    """nn.Module view of an oracle, for captum methods that hook modules (DeepLift, GuidedBackprop).

    Its forward calls the oracle (so every row is counted); the model is registered as its
    child, reached through the oracle's public `layer("")` (torch's `get_submodule("")` is
    the root), only so that captum can put its hooks on the model's ReLU / max-pool modules.
    """

    def __init__(self, oracle: Oracle) -> None:
        super().__init__()
        self.model = oracle.layer("")
        self._fn = logit_fn(oracle)

    def forward(self, x: torch.Tensor, contrast: torch.Tensor | None = None) -> torch.Tensor:
        return self._fn(x, contrast)


def forward_args(contrast: torch.Tensor | None) -> tuple | None:
    """captum's `additional_forward_args` for an optional contrast class."""
    return None if contrast is None else (contrast,)


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Run the block with the global torch and numpy RNGs seeded, then restore both.

    captum draws its noise and samples from them (GradientShap's path points from numpy).
    """
    devices = [device.index or 0] if device.type == "cuda" else []
    state = np.random.get_state()
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            np.random.seed(seed % 2**32)
            yield
    finally:
        np.random.set_state(state)


def row_noise(x: torch.Tensor, seed: int, k: int = 1, kind: str = "rand") -> torch.Tensor:
    """Seeded noise per row, keyed by (seed, the row's bytes): the same image gets the same draw
    whatever batch it is in, so resumed or re-batched runs reproduce it.

    Args:
        x: the batch (N,C,H,W).
        seed: the method's seed.
        k: draws per row.
        kind: "rand" (uniform [0,1)) or "randn" (standard normal).
    Returns:
        float32 (k,N,C,H,W) on x's device.
    """
    draw = torch.rand if kind == "rand" else torch.randn
    rows = []
    for row in x.detach().cpu().numpy():
        gen = torch.Generator().manual_seed((seed * 1_000_003 + zlib.crc32(row.tobytes())) % 2**63)
        rows.append(draw((k, *row.shape), generator=gen))
    return torch.stack(rows, 1).to(x.device)


def instance_chunks(n: int, rows_each: int, batch_rows: int) -> Iterator[slice]:
    """Slices of the batch such that each chunk costs about `batch_rows` model rows.

    Args:
        n: instances in the batch.
        rows_each: model rows one instance costs in a single captum pass.
        batch_rows: rows wanted per pass (at least one instance per chunk).
    Returns:
        An iterator of slices covering range(n).
    """
    step = max(1, batch_rows // max(1, rows_each))
    for start in range(0, n, step):
        yield slice(start, min(n, start + step))


class CaptumAdapter(AttributionMethod):
    """An attribution method as one `attribute(x, target, contrast) -> Tensor` (captum's shape).

    The call moves the inputs to the oracle's device, enables grad, silences captum's warnings
    and types the result (an AttrResult whose info says what `contrast` did).

    Class attributes beyond AttributionMethod's: `contrast_mode` (what `contrast` does:
    "margin", "native" or "ignored"), `uses_gradients`, `uses_model` (for tests and reports).
    """

    contrast_mode: ClassVar[str] = "margin"
    uses_gradients: ClassVar[bool] = True  # back-propagates through the model
    uses_model: ClassVar[bool] = True  # queries the model at all

    def __call__(self, x: torch.Tensor, target: torch.Tensor,
                 contrast: torch.Tensor | None = None) -> AttrResult:
        device = x.device
        x = x.detach().to(self.oracle.device, torch.float32)
        target = target.to(x.device, torch.long)
        if contrast is not None:
            contrast = contrast.to(x.device, torch.long)
        with warnings.catch_warnings(), torch.enable_grad():
            warnings.simplefilter("ignore")
            attr = self.attribute(x, target, contrast)
        attr = attr.detach().to(device, torch.float32).reshape(x.shape)
        used = "none" if contrast is None else self.contrast_mode
        return AttrResult(attr=attr, explained=target.to(device).clone(), info={"contrast": used})

    @abc.abstractmethod
    def attribute(self, x: torch.Tensor, target: torch.Tensor,
                  contrast: torch.Tensor | None) -> torch.Tensor:
        """Raw attribution tensor shaped like x."""
