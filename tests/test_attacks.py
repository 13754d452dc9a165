"""The ART decision-based attacks as counterfactual solvers: counted queries, budgets, anytime results, failures.

The solver contract (shapes, claimed = valid, counted, no gradients) runs for every registered
solver in test_solver_contract.py; here: ART's own query count against the oracle's, the budget
as a hard cap, a budget-B run equal to the first B queries of a longer run, and failure as a value.
"""

from __future__ import annotations

import contextlib
import io
import re

import numpy as np
import pytest
import torch

from solvers import SOLVERS
from tests.conftest import skip_or_fail

ATTACKS = ["hopskipjump", "boundary_attack", "sign_opt"]


@pytest.fixture(autouse=True, scope="module")
def _art():
    try:
        import art  # noqa: F401
    except ImportError:
        skip_or_fail('ART is not installed (pip install -e ".[art]")')


def run(name, oracle, mnist, x, target, **params):
    solver = SOLVERS.get(name)(oracle.black_box(), **params).fit(mnist.train.x, mnist.train.y)
    oracle.start(len(x))
    return solver(x, target)


def test_sign_opt_self_count_against_the_oracle(oracle, errors, mnist):
    """ART's Sign-OPT counts its own queries (and stops on them); the oracle counts every row. ART's count
    misses exactly: generate()'s prediction of x (1), the final success check (1), and in each local line
    search that does not give up, the last loop test (1 per call). Everything else matches row for row."""
    from art.attacks.evasion.sign_opt import SignOPTAttack

    from solvers._art_common import Ledger, by_class, classifier, start_point

    x, t = errors.x[:1], int(errors.true[0])
    oracle.start(1)
    ledger = Ledger(oracle.black_box(), x, t, 0, cap=10**9)
    start = start_point(ledger, by_class(mnist.train.x, mnist.train.y))
    before = oracle.queries[0].item()
    attack = SignOPTAttack(classifier(ledger, 10), targeted=True, num_trial=1, query_limit=300, k=30,
                           batch_size=1, verbose=True)
    calls = {"local": 0, "gave_up": 0}
    local = attack._fine_grained_binary_search_local

    def counted_local(*args, **kwargs):
        lbd, n = local(*args, **kwargs)
        calls["local"] += 1
        calls["gave_up"] += lbd == float("inf")
        return lbd, n

    attack._fine_grained_binary_search_local = counted_local
    out = io.StringIO()
    with contextlib.redirect_stdout(out), np.errstate(all="ignore"):
        np.random.seed(0)
        attack.generate(x.numpy(), y=np.eye(10, dtype=np.float32)[[t]], x_init=start.numpy())
    found = re.findall(r"Adversarial Example Found Successfully.*?queries (\d+)", out.getvalue(), re.S)
    assert found, out.getvalue()[-500:]
    art_count = int(found[-1])
    bench_count = oracle.queries[0].item() - before
    assert oracle.queries[0].item() == ledger.used  # the ledger and the oracle count the same rows
    assert art_count >= 300  # ART stops only after the iteration that passes its limit
    assert bench_count - art_count == 1 + 1 + (calls["local"] - calls["gave_up"])


@pytest.mark.parametrize("name", ATTACKS)
def test_budget_is_a_hard_cap_and_counted_by_the_oracle(name, oracle, errors, mnist):
    x, target = errors.x[:2], errors.true[:2]
    res = run(name, oracle, mnist, x, target, max_queries=150)
    assert (oracle.queries <= 150).all() and (oracle.queries > 0).all()
    assert oracle.queries.tolist() == [float(q) for q in res.info["queries_self"]]
    assert (oracle.grad_queries == 0).all()
    assert res.success.all(), res.reason  # the start point alone is a counterfactual
    assert torch.equal(oracle.predict(res.x_cf) == target, res.success)


@pytest.mark.parametrize("name", ["hopskipjump", "boundary_attack"])
def test_a_budget_b_run_is_the_first_b_queries_of_a_longer_one(name, oracle, errors, mnist):
    """Seeded per image and stopped only by the budget: the equal-budget table may read a long run's trace."""
    from solvers._art_common import RESERVE

    x, target = errors.x[:2], errors.true[:2]
    long = run(name, oracle, mnist, x, target, max_queries=600)
    short = run(name, oracle, mnist, x, target, max_queries=200)
    l2_short = (short.x_cf - x).flatten(1).norm(dim=1)
    for i in range(2):
        at = min((d for used, d in long.info["trace"][i] if used <= 200 - RESERVE), default=float("inf"))
        assert l2_short[i].item() == pytest.approx(at, rel=1e-5, abs=1e-6)
    l2_long = (long.x_cf - x).flatten(1).norm(dim=1)
    assert (l2_long <= l2_short + 1e-6).all()


def test_failure_is_a_value(oracle, errors, mnist):
    """No training image in the pool is labelled target (the labels are shifted): success False, with a reason."""
    solver = SOLVERS.get("hopskipjump")(oracle.black_box(), max_queries=100)
    solver.fit(mnist.train.x[:2000], (mnist.train.y[:2000] + 1) % 10)
    x, target = errors.x[:2], errors.true[:2]
    oracle.start(2)
    res = solver(x, target)
    assert not res.success.any() and all("target" in r for r in res.reason)
    assert torch.equal(res.x_cf, x) and (oracle.queries == 15).all()  # the 15 nearest candidates, counted


def test_unfitted_attack_says_so(oracle, errors):
    solver = SOLVERS.get("boundary_attack")(oracle.black_box())
    with pytest.raises(RuntimeError, match="fit"):
        solver(errors.x[:1], errors.true[:1])


def test_bench_list_marks_the_attacks_unavailable_without_art():
    """Without ART (hidden from the import system here) `bench list` names the extra; it imports no torch."""
    import subprocess
    import sys

    code = ("import importlib.util, sys\n"
            "real = importlib.util.find_spec\n"
            "importlib.util.find_spec = lambda name, *a: None if name == 'art' else real(name, *a)\n"
            "from bench.cli import main\n"
            "main(['list', 'solvers'])\n"
            "print('torch loaded' if 'torch' in sys.modules else 'no torch')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    for name in ATTACKS:
        line = next(line for line in out.splitlines() if line.strip().startswith(name + " "))
        assert 'UNAVAILABLE (needs [art]: pip install "bench-xai[art]"' in line
    assert "growing_spheres" in out and out.strip().endswith("no torch")
