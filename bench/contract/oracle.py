"""The Oracle: the only door through which a method touches the classifier.

It counts, per instance of the current batch, the model input rows evaluated (queries)
and the rows back-propagated (gradient queries). Counting happens here, so no solver can
under-report its cost. A black-box view shares the counters and refuses gradients.

Row ownership: every call may pass `owner`, an int64 tensor (rows,) naming the instance
(0..n-1, as set by `start(n)`) that each row belongs to. Without it, a call with exactly
n rows is taken row-for-row, and any other row count is spread evenly over the n
instances (what captum's batched expansions need).
"""

from __future__ import annotations

import torch
from torch import nn


class GradientRefused(RuntimeError):
    """A black-box method asked for gradients."""


class Oracle:
    """Counted access to a classifier that maps [0,1] images (N,C,H,W) to logits.

    Args:
        model: the classifier (owns its input normalisation); put in eval mode here.
        device: where the model runs; inputs are moved there.
        batch_size: rows per forward pass for gradient-free calls (128-256 rows were fastest per row on CPU).
    """

    white_box = True

    def __init__(self, model: nn.Module, device: torch.device | str = "cpu", batch_size: int = 256,
                 fast: bool = True):
        self.device = torch.device(device)
        self.fast = fast  # gradient-free forwards through a frozen, inference-optimised copy (CPU)
        self._fast = None  # built on the first gradient-free call; False when unavailable
        self._fast_stamp: tuple = ()  # the weights' in-place versions the copy was built from
        self._model = model.to(self.device).eval()
        for p in self._model.parameters():
            p.requires_grad_(False)
        self.batch_size = batch_size
        self.n_classes: int | None = None
        self.on_rows = None  # optional callable(total_rows) after each counted call (live progress)
        self.start(0)

    # -- counters --------------------------------------------------------------------
    def start(self, n: int) -> None:
        """Begin counting for a batch of `n` instances (resets the per-instance counters)."""
        self.n = n
        self.queries = torch.zeros(n, dtype=torch.float64)
        self.grad_queries = torch.zeros(n, dtype=torch.float64)
        self.total_rows = 0

    def _count(self, counter: torch.Tensor, rows: int, owner: torch.Tensor | None) -> None:
        if self.n == 0:
            return
        if owner is not None:
            counter.index_add_(0, owner.detach().to("cpu", torch.long),
                               torch.ones(len(owner), dtype=torch.float64))
        elif rows == self.n:
            counter += 1.0
        else:
            counter += rows / self.n

    # -- forward passes ----------------------------------------------------------------
    def logits(self, x: torch.Tensor, owner: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of `x` without gradients, in chunks of `batch_size`; counts len(x) queries."""
        x = x.to(self.device)
        with torch.no_grad():
            forward = self._forward(x)
            out = torch.cat([forward(c) for c in x.split(self.batch_size)]) if len(x) else \
                torch.empty(0, self._n_out(), device=self.device)
        self._count(self.queries, len(x), owner)
        self.total_rows += len(x)
        self.n_classes = out.shape[1] if len(x) else self.n_classes
        if self.on_rows is not None:
            self.on_rows(self.total_rows)
        return out

    def _forward(self, x: torch.Tensor):
        """The module gradient-free calls use: the inference-optimised copy when it exists and agrees."""
        if _hooked(self._model):  # a method watching a layer (Score-CAM) needs the real one, and only its call
            return self._model
        if self._fast is not None and self._fast_stamp != _weights_stamp(self._model):
            self._fast = None  # weights changed in place (MPRT loads randomised layers): the frozen copy is stale
        if self._fast is None and len(x):
            self._fast = _optimised(self._model, x[: min(len(x), 8)]) if self.fast and self.device.type == "cpu" \
                else False
            self._fast_stamp = _weights_stamp(self._model)
        return self._fast or self._model

    def probs(self, x: torch.Tensor, owner: torch.Tensor | None = None) -> torch.Tensor:
        """Softmax probabilities of `x` (counted like `logits`)."""
        return self.logits(x, owner).softmax(dim=1)

    def predict(self, x: torch.Tensor, owner: torch.Tensor | None = None) -> torch.Tensor:
        """Predicted class of each row (counted like `logits`)."""
        return self.logits(x, owner).argmax(dim=1)

    def logits_grad(self, x: torch.Tensor, owner: torch.Tensor | None = None) -> torch.Tensor:
        """Differentiable logits of `x` (white-box only).

        Counts len(x) queries now and len(x) gradient queries when (and only when) a
        gradient actually flows back through the returned tensor.
        """
        out = self._model(x.to(self.device))
        self._count(self.queries, len(x), owner)
        self.total_rows += len(x)
        self.n_classes = out.shape[1]
        if self.on_rows is not None:
            self.on_rows(self.total_rows)
        if out.requires_grad:
            owner_c = None if owner is None else owner.detach().clone()

            def _hook(grad: torch.Tensor) -> None:
                self._count(self.grad_queries, len(grad), owner_c)

            out.register_hook(_hook)
        return out

    def portable(self) -> "BlackBoxOracle":
        """A black-box oracle over a CPU copy of the model, to be sent to a worker process.

        It counts on its own (fresh counters); whoever runs it reports the rows it counted
        back through `count_remote`, so a worker's queries are counted by this same code.
        """
        import copy

        return Oracle(copy.deepcopy(self._model).cpu(), "cpu", self.batch_size, self.fast).black_box()

    def count_remote(self, rows: int, owner: int) -> None:
        """Charge `rows` that a portable copy of this oracle counted in a worker to instance `owner`."""
        if self.n and rows:
            self.queries[owner] += float(rows)
        self.total_rows += int(rows)

    def __getstate__(self) -> dict:
        # a progress callback does not travel to a worker; the optimised copy is rebuilt there
        return {**self.__dict__, "on_rows": None, "_fast": None}

    def throughput(self, x: torch.Tensor, rows: int = 4096, repeats: int = 3) -> dict:
        """The model's raw forward speed on this device, uncounted (the yardstick for solvers).

        Tiles `x` to `rows` rows, runs them in chunks of `batch_size` without gradients, and
        returns the best of `repeats` timings: dict(rows_per_s, rows, batch_size, seconds).
        """
        import time

        if len(x) == 0:
            raise ValueError("throughput needs at least one input row")
        reps = -(-rows // len(x))
        x = x.to(self.device).repeat(reps, *[1] * (x.dim() - 1))[:rows]
        sync = torch.cuda.synchronize if self.device.type == "cuda" else (lambda: None)
        best = float("inf")
        with torch.no_grad():
            forward = self._forward(x)  # the forward the counted calls use
            forward(x[:self.batch_size])  # warm-up (allocations, cuDNN choice)
            for _ in range(repeats):
                sync()
                t0 = time.perf_counter()
                for c in x.split(self.batch_size):
                    forward(c)
                sync()
                best = min(best, time.perf_counter() - t0)
        return dict(rows_per_s=round(rows / best, 1), rows=rows, batch_size=self.batch_size, seconds=round(best, 6),
                    optimised=bool(self._fast))

    def forward_fn(self):
        """A plain callable x -> logits for libraries (captum) that drive the model."""
        return self.logits_grad

    def layer(self, name: str) -> nn.Module:
        """A named sub-module (for layer methods such as Grad-CAM; white-box only)."""
        return self._model.get_submodule(name)

    def named_layer_for_cam(self) -> str:
        """Name of the last convolutional layer, the usual Grad-CAM target."""
        return getattr(self._model, "cam_layer", None) or [
            n for n, m in self._model.named_modules() if isinstance(m, nn.Conv2d)][-1]

    def unwrap(self) -> nn.Module:
        """The model itself, for metric libraries that drive it directly (Quantus).

        Never handed to solvers or attribution methods; their cost would go uncounted.
        """
        return self._model

    def black_box(self) -> "BlackBoxOracle":
        """A view of this oracle that shares its counters and refuses gradients."""
        return BlackBoxOracle(self)

    def _n_out(self) -> int:
        return self.n_classes or 10


# The optimised forward may differ from the eager one by float rounding only (~1e-7 on logits).
FAST_TOLERANCE = 1e-4


def _hooked(model: nn.Module) -> bool:
    """Does anything watch the model's layers (forward hooks, module-level or global)?"""
    from torch.nn.modules import module as torch_module

    if torch_module._global_forward_hooks or torch_module._global_forward_pre_hooks:
        return True
    return any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def _weights_stamp(model: nn.Module) -> tuple:
    """Each parameter's and buffer's in-place version counter: any load_state_dict, init or optimiser
    step on the model changes it, so a frozen copy built before can be recognised as stale."""
    return tuple(t._version for t in (*model.parameters(), *model.buffers()))


def _optimised(model: nn.Module, example: torch.Tensor):
    """A frozen TorchScript copy of `model` for inference (conv+bn folding, fused conv+relu, prepacked
    oneDNN weights), or False when the model cannot be traced or the copy disagrees with the model.

    On the 2-core CPU the default CNN's forward ran ~3x faster this way, resnet_cbam ~1.6x
    (benchmarks/test_perf.py). It is checked against the eager model on `example` and on one row.
    """
    import warnings

    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            fast = torch.jit.optimize_for_inference(torch.jit.trace(model.eval(), example, check_trace=False))
            for probe in (example, example[:1]):
                ref, got = model(probe), fast(probe)
                if got.shape != ref.shape or not torch.allclose(got, ref, atol=FAST_TOLERANCE, rtol=FAST_TOLERANCE):
                    return False
        return fast
    except Exception:  # noqa: BLE001 - any model TorchScript cannot take simply runs eagerly
        return False


class BlackBoxOracle:
    """Gradient-free view of an Oracle: probabilities and labels only, still counted."""

    white_box = False

    def __init__(self, inner: Oracle) -> None:
        self._inner = inner
        self.device = inner.device

    def logits(self, x: torch.Tensor, owner: torch.Tensor | None = None) -> torch.Tensor:
        return self._inner.logits(x, owner)

    def probs(self, x: torch.Tensor, owner: torch.Tensor | None = None) -> torch.Tensor:
        return self._inner.probs(x, owner)

    def predict(self, x: torch.Tensor, owner: torch.Tensor | None = None) -> torch.Tensor:
        return self._inner.predict(x, owner)

    def __getattr__(self, name: str):
        if name.startswith("__") or name == "_inner":  # unpickling probes these before _inner exists
            raise AttributeError(name)
        if name in ("logits_grad", "forward_fn", "layer", "named_layer_for_cam", "_model", "unwrap"):
            raise GradientRefused(f"black-box oracle refuses {name!r}: no gradients or internals")
        return getattr(self._inner, name)
