"""Base classes for every registered method: bind (oracle + params), then call on a batch.

`Method(oracle, **params)` only binds: it validates `params` against the method's frozen
`Params` dataclass and stores them. `method(x, target)` does the work on one batch.
"""

from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import torch

from bench.contract.oracle import Oracle
from bench.contract.params import build
from bench.contract.results import AttrResult, CFResult


@dataclass(frozen=True)
class NoParams:
    """This method has no parameters."""


class Method(abc.ABC):  # noqa: B024 (the abstract __call__ lives on the two subclasses)
    """Common binding logic. Subclasses set `Params`, `version`, `white_box`, `paper`."""

    Params: ClassVar[type] = NoParams
    version: ClassVar[str] = "1"
    white_box: ClassVar[bool] = True
    paper: ClassVar[str] = ""
    deterministic: ClassVar[bool] = True  # same inputs + seed -> same outputs (bench check relies on it)
    # spends its time in another process (the alibi worker): the harness may run it beside other work
    in_worker: ClassVar[bool] = False
    registry_name: ClassVar[str] = ""
    # run-wide services (cache directory, cached checkpoints, seed, progress): set by the harness
    # before fit(); None when a method is used on its own
    ctx = None
    # (queries, seconds) of a one-off training that fit() loaded from a cache instead of running:
    # the harness reports it as the entry's fit bill (otherwise it measures fit() itself)
    fit_cost: tuple[float, float] | None = None
    # what fit() trained or loaded (sources, checkpoints, training settings): filed in provenance
    fit_info: dict | None = None

    def __init__(self, oracle: Oracle, **params) -> None:
        if self.white_box and not getattr(oracle, "white_box", False):
            raise TypeError(f"{type(self).__name__} is white-box and needs a white-box oracle")
        self.oracle = oracle
        self.params = build(self.Params, params, self.registry_name or type(self).__name__)

    def fit(self, x_train: torch.Tensor, y_train: torch.Tensor) -> "Method":
        """Take what the method needs from the training split (prototypes, baselines).

        The harness calls this once after binding and before the first batch; the default
        needs nothing. Training data never counts as model queries; model calls made here
        through the oracle are counted but happen before the per-batch counters start.
        """
        return self

    @classmethod
    def param_dict(cls, **params) -> dict:
        """The full parameter table (defaults filled in), for provenance and cache keys."""
        return dataclasses.asdict(build(cls.Params, params, cls.registry_name or cls.__name__))


class CounterfactualSolver(Method):
    """(oracle, x, target) -> CFResult: move each x toward `target` (the true class)."""

    @abc.abstractmethod
    def __call__(self, x: torch.Tensor, target: torch.Tensor) -> CFResult:
        """Counterfactuals for one batch."""


class AttributionMethod(Method):
    """(oracle, x, target[, contrast]) -> AttrResult: evidence in x for class `target`.

    `contrast` (int64 (N,) or None) is the class Q of a contrastive question
    "why target rather than Q?"; methods that cannot use it ignore it and say so
    through `contrastive = False`.
    """

    contrastive: ClassVar[bool] = False

    @abc.abstractmethod
    def __call__(self, x: torch.Tensor, target: torch.Tensor,
                 contrast: torch.Tensor | None = None) -> AttrResult:
        """Attribution maps for one batch."""
