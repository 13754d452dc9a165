"""What every metric is: a pure function -> one score per instance (Tensor[N]) plus metadata.

Counterfactual metrics take `(batch: CFBatch, ctx: MetricContext)`; attribution metrics
take `(batch: AttrBatch, ctx: MetricContext, **params)`. Aggregation lives elsewhere
(bench.leaderboard). A change of definition bumps `version`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch


@dataclass
class CFBatch:
    """A batch of counterfactuals as the harness measured it.

    x, x_cf: float32 (N,C,H,W) in [0,1]; target: int64 (N,); probs_cf: (N,K) softmax of
    the model at x_cf (computed by the harness, not counted against the solver);
    queries, grad_queries: float64 (N,) counted by the oracle; seconds: (N,) wall time.
    mask: bool shaped like x, the ground-truth pixels that carry the label (bench.data.controlled),
    or None when the data has none.
    """

    x: torch.Tensor
    x_cf: torch.Tensor
    target: torch.Tensor
    probs_cf: torch.Tensor
    queries: torch.Tensor
    grad_queries: torch.Tensor
    seconds: torch.Tensor
    index: torch.Tensor | None = None  # test-set indices of the rows
    mask: torch.Tensor | None = None  # bool like x: the ground-truth pixels; None without one

    @property
    def valid(self) -> torch.Tensor:
        return self.probs_cf.argmax(1) == self.target.to(self.probs_cf.device)


@dataclass
class AttrBatch:
    """A batch of attributions: x (N,C,H,W), attr shaped like x, explained (N,) the class
    explained, contrast (N,) or None, and seconds (N,) spent computing them; mask, bool shaped
    like x, the ground-truth pixels that carry the label (bench.data.controlled), or None when
    the data has none.

    `explain_fn(x, explained) -> attr` re-runs the same method with the same parameters
    (for metrics that perturb the input and re-explain, e.g. MaxSensitivity)."""

    x: torch.Tensor
    attr: torch.Tensor
    explained: torch.Tensor
    seconds: torch.Tensor
    contrast: torch.Tensor | None = None
    method: str = ""
    explain_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    mask: torch.Tensor | None = None  # bool like x: the ground-truth pixels; None without one


@dataclass
class MetricContext:
    """Run-wide resources and services for metrics and methods (set up by the harness).

    `oracle` evaluates the model for metrics (its counts are not charged to any method);
    `memo` lets a metric family build an expensive resource once per run; `checkpoint`
    loads or trains (and caches) a module a metric or method needs; `train_classifier`
    trains a classifier on `data.train` the way the harness trains its models.
    """

    oracle: Any = None
    data: Any = None
    device: Any = "cpu"
    cache_dir: str = "~/.cache/bench"
    seed: int = 0
    dataset: str = "mnist"
    model_name: str = "cnn"
    model_sha256: str = ""  # the explained model's weights hash: keys what a method trains against it
    use_reference: bool = True  # trained resources from the shipped reference weights when pinned
    progress: bool = False
    memo: dict = field(default_factory=dict)
    # (relpath, build_fn, train_fn) -> (module, meta): reference weights, then cache, else train
    checkpoint_fn: Callable | None = None
    # (model, settings: dict, seed) -> meta: the harness's classifier training loop on data.train
    train_fn: Callable | None = None

    def once(self, key: str, build: Callable[[], Any]) -> Any:
        if key not in self.memo:
            self.memo[key] = build()
        return self.memo[key]

    def checkpoint(self, relpath: str, build_fn: Callable[[], Any], train_fn: Callable[[Any], dict]):
        """(module, meta) for `relpath` ("<family>/<dataset>/<name>-<key>.pt"), trained on a miss.

        Without a `checkpoint_fn` (a context made by hand) the module is built and trained
        now, uncached.
        """
        if self.checkpoint_fn is not None:
            return self.checkpoint_fn(relpath, build_fn, train_fn)
        module = build_fn()
        return module, dict(train_fn(module), source="trained", cached=False, relpath=relpath)

    def train_classifier(self, model, settings: dict, seed: int) -> dict:
        """Train `model` on data.train with `settings` (the fields of bench's TrainConfig)."""
        if self.train_fn is None:
            raise ValueError("this context has no train_fn (bench.context.metric_context provides one)")
        return self.train_fn(model, settings, seed)


NEEDS = ("explain_fn", "train_data", "mask")
KINDS = ("mean", "proportion", "timing")  # what kind of quantity: it decides the interval (bench.stats)


def metric(registry, name: str | None = None, *, higher_is_better: bool, version: str, definition: str,
           valid_only: bool = False, needs: tuple[str, ...] = (), provenance: Callable | None = None,
           kind: str = "mean", board: bool = True, control: str = ""):
    """Register a metric function with its metadata.

    Args:
        registry: CF_METRICS or ATTR_METRICS.
        name: the metric's name; a built-in metric takes none (its declaration in metrics/__init__.py
            has it, found by the function's "module:name").
        higher_is_better: the direction shown as an arrow in leaderboards.
        version: bumped whenever the definition changes.
        definition: one line, copied into leaderboards and their README.
        valid_only: aggregate only over rows whose counterfactual is valid (distances of a
            failed counterfactual mean nothing); the leaderboard says so.
        needs: what the metric uses beyond the batch: "explain_fn" (it re-runs the method on
            perturbed inputs: the harness scores it on the `attributions.subset_by_need` errors)
            and/or "train_data" (the training split, or models trained on it); "mask": it scores
            only batches whose data has a ground-truth mask (`batch.mask`, bench.data.controlled).
        provenance: (ctx) -> dict of what the metric built (trained models, sizes), merged
            into the leaderboard's provenance JSON.
        kind: "mean" (a continuous score: BCa bootstrap interval), "proportion" (a 0/1 score:
            Wilson interval) or "timing" (seconds shared by a batch: no interval).
        board: False keeps the metric off a board that names no metrics (a run that names it
            still gets it): for metrics measured to be degenerate or redundant on the boards'
            data, the reason in their definition and in the README.
        control: "" when the random map is a meaningful floor for the metric (a method must beat
            it); else why no control means anything for it (e.g. the score depends on the map's
            value histogram only), which the meta-evaluation prints instead of a separation test.
    """

    def deco(fn: Callable) -> Callable:
        label = name or fn.__name__
        if kind not in KINDS:
            raise ValueError(f"metric {label!r}: unknown kind {kind!r} (known: {', '.join(KINDS)})")
        unknown = set(needs) - set(NEEDS)
        if unknown:
            raise ValueError(f"metric {label!r}: unknown needs {sorted(unknown)} (known: {', '.join(NEEDS)})")
        registry.register(name)(fn)
        fn.metric_name = fn.registry_name
        fn.higher_is_better = higher_is_better
        fn.version = version
        fn.definition = definition
        fn.valid_only = valid_only
        fn.needs = tuple(needs)
        fn.provenance = provenance
        fn.kind = kind
        fn.board = board
        fn.control = control
        return fn

    return deco
