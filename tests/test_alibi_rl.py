"""alibi_rl (CounterfactualRL, PyTorch backend) on the real CNN and real MNIST errors, small budget.

It trains for real (a 1-epoch autoencoder on 4,000 training images, 40 actor-critic steps of
50 rows) and checks what the harness relies on: every training row goes through the oracle,
TensorFlow stays out of this process, the global RNGs are left alone, the autoencoder is
cached and reloaded, and a second fit with the same seed gives the same counterfactuals.
"""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
import torch

from solvers import SOLVERS

SMALL = dict(latent_dim=16, ae_epochs=1, train_steps=40, batch_size=50, fit_rows=1000)
N_TRAIN = 4000


@pytest.fixture(scope="module", autouse=True)
def _needs_alibi():
    if importlib.util.find_spec("alibi") is None:
        from tests.conftest import skip_or_fail

        skip_or_fail('alibi is not installed: pip install -e ".[alibi]"')


@pytest.fixture(scope="module")
def fitted(cnn, mnist, tmp_path_factory):
    """alibi_rl fitted once through a real metric context (cache in a fresh folder)."""
    from bench.context import metric_context
    from bench.contract.oracle import Oracle

    cache = str(tmp_path_factory.mktemp("rl_cache"))
    oracle = Oracle(cnn[0], "cpu")
    solver = SOLVERS.get("alibi_rl")(oracle.black_box(), **SMALL)
    solver.ctx = metric_context(mnist, oracle, "cpu", cache_dir=cache, use_reference=False,
                                model_sha256=cnn[1]["weights_sha256"])
    rng_before = torch.get_rng_state().clone(), np.random.get_state()[1].copy()
    oracle.start(0)
    solver.fit(mnist.train.x[:N_TRAIN], mnist.train.y[:N_TRAIN])
    return solver, oracle, cache, rng_before


def test_training_rows_are_counted(fitted):
    solver, oracle, _, _ = fitted
    # alibi predicts the labels of the fit_rows images once, then batch_size rows per step
    assert oracle.total_rows == SMALL["fit_rows"] + SMALL["train_steps"] * SMALL["batch_size"]


def test_no_tensorflow_and_global_rng_untouched(fitted):
    _, _, _, (torch_state, np_state) = fitted
    assert "tensorflow" not in sys.modules or sys.modules["tensorflow"] is not None
    assert "tensorflow" not in sys.modules, "alibi_rl pulled TensorFlow into the main process"
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], np_state)


def test_explains_real_errors_with_two_queries_each(fitted, errors):
    solver, oracle, _, _ = fitted
    x, t = errors.x[:8], errors.true[:8]
    oracle.start(len(x))
    res = solver(x, t)
    assert oracle.queries.tolist() == [2.0] * 8  # the instance and its counterfactual
    assert res.x_cf.shape == x.shape and float(res.x_cf.min()) >= 0.0 and float(res.x_cf.max()) <= 1.0
    assert not torch.equal(res.x_cf, x)  # a decoded image, never x itself
    pred = oracle.predict(res.x_cf)  # success is exactly "the model now says target"
    assert res.success.tolist() == (pred == t).tolist()
    assert all((r == "") == ok for r, ok in zip(res.reason, res.success.tolist()))


def test_cached_training_is_reloaded_with_its_recorded_cost(fitted, cnn, mnist, errors):
    from bench.context import metric_context
    from bench.contract.oracle import Oracle

    solver, oracle, cache, _ = fitted
    assert solver.ae_meta["source"] == "trained" and solver.actor_meta["source"] == "trained"
    assert solver.fit_cost[0] == SMALL["fit_rows"] + SMALL["train_steps"] * SMALL["batch_size"]
    again = SOLVERS.get("alibi_rl")(Oracle(cnn[0], "cpu").black_box(), **SMALL)
    again.ctx = metric_context(mnist, again.oracle, "cpu", cache_dir=cache, use_reference=False,
                               model_sha256=cnn[1]["weights_sha256"])
    again.oracle.start(0)
    again.fit(mnist.train.x[:N_TRAIN], mnist.train.y[:N_TRAIN])
    assert again.oracle.total_rows == 0  # nothing trained now...
    assert again.fit_cost == solver.fit_cost  # ...but the bill of the training it loaded is reported
    assert again.ae_meta["source"] == again.actor_meta["source"] == "cache"
    assert again.ae_meta["weights_sha256"] == solver.ae_meta["weights_sha256"]
    x, t = errors.x[:6], errors.true[:6]
    oracle.start(6)
    again.oracle.start(6)
    assert torch.equal(solver(x, t).x_cf, again(x, t).x_cf)
    # another model (here: another weights hash) never gets this actor
    other = SOLVERS.get("alibi_rl")(Oracle(cnn[0], "cpu").black_box(), **dict(SMALL, train_steps=20))
    other.ctx = metric_context(mnist, other.oracle, "cpu", cache_dir=cache, use_reference=False,
                               model_sha256="0" * 64)
    other.oracle.start(0)
    other.fit(mnist.train.x[:N_TRAIN], mnist.train.y[:N_TRAIN])
    assert other.actor_meta["source"] == "trained" and other.oracle.total_rows == SMALL["fit_rows"] + 20 * 50


def test_params_are_checked():
    from bench.contract import ConfigError
    from bench.contract.oracle import Oracle

    cls = SOLVERS.get("alibi_rl")
    for bad in (dict(train_steps=19), dict(latent_dim=0), dict(ae_lr=0.0), dict(coeff_sparsity=-1.0)):
        with pytest.raises(ConfigError):
            cls(Oracle(torch.nn.Linear(1, 1)).black_box(), **bad)
