"""Random-attribution control: the floor every attribution method should beat.

Each pixel gets an independent U[0,1) score, drawn from a generator keyed by (seed, the
row's bytes), so an image gets the same map whatever batch it is in. No model queries;
`target` and `contrast` are ignored (contrast_mode "ignored"). The sanity-check role follows
Adebayo et al. 2018 and the random baseline of RISE-style deletion/insertion evaluations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from bench.contract import ConfigError, Range
from bench.contract.captum import CaptumAdapter, row_noise
from solvers import ATTRIBUTIONS


@dataclass(frozen=True)
class RandomParams:
    """Args:
    seed: seed of the random maps.
    """

    seed: Annotated[int, Range("[0, 2**32)")] = 0

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed!r}")


@ATTRIBUTIONS.register()
class RandomAttribution(CaptumAdapter):
    """Seeded uniform random attribution map (control; no model access)."""

    Params = RandomParams
    version = "1"
    white_box = False
    uses_gradients = False
    uses_model = False
    paper = "https://arxiv.org/abs/1810.03292"
    contrast_mode = "ignored"

    def attribute(self, x, target, contrast):
        return row_noise(x, self.params.seed)[0]
