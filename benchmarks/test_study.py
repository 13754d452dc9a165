"""A study's wall time under the local and the Ray executor, and against the sum of its units.

The slice of tests/test_study.py (the CNN with 2 seeds and a small ResNet-SE with 1, gradient
solver, saliency and the random control), on the first 8 errors of each model. The models are
trained once before timing (cached), so each timed study runs every explain unit from an empty
store, writes every board and the study table. Ray runs on a local 2-CPU instance started here
(its workers start cold in the first round: that is part of what a user pays).

Run: pytest benchmarks -o addopts= --benchmark-only -k study   (ratios: benchmarks/ratios.py)
"""

from __future__ import annotations

import itertools

import pytest

from tests.conftest import skip_or_fail
from tests.test_study import SLICE

_N = itertools.count()


@pytest.fixture(scope="module")
def preset(tmp_path_factory, cache_dir):
    from bench.config import make_config
    from bench.study import run_study

    path = tmp_path_factory.mktemp("study_bench") / "slice.toml"
    path.write_text(SLICE.replace("limit = 4", "limit = 8"))
    warm = make_config(str(path), cache_dir=cache_dir, device="cpu", store=str(path.parent / "warm.sqlite"),
                       out=str(path.parent / "warm"))
    run_study(warm, progress=False)  # trains (or loads) the models: not part of the timings
    return path


def _run(preset, cache_dir, executor: str) -> dict:
    from bench.config import make_config
    from bench.study import run_study

    n = next(_N)
    cfg = make_config(str(preset), cache_dir=cache_dir, device="cpu", store=str(preset.parent / f"s{n}.sqlite"),
                      out=str(preset.parent / f"out{n}"))
    return run_study(cfg, executor=executor, progress=False)


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_study_wall(benchmark, preset, cache_dir, executor):
    if executor == "ray":
        try:
            import ray
        except ImportError:
            skip_or_fail('ray is not installed: pip install -e ".[ray]"')
        ray.init(num_cpus=2, include_dashboard=False)
    try:
        summary = benchmark.pedantic(_run, args=(preset, cache_dir, executor), rounds=2, iterations=1)
    finally:
        if executor == "ray":
            ray.shutdown()
    units = [u for u in summary["units"] if u["kind"] in ("train", "explain", "prepare", "write", "table")]
    benchmark.extra_info.update(units_seconds=sum(u["seconds"] for u in units), n_units=len(units),
                                study_seconds=summary["seconds"])
