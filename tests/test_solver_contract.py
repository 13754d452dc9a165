"""The counterfactual solver contract, over every registered solver, on real errors.

Bind (oracle + params) does no work; a call returns a CFResult shaped like x, on x's device,
with one bool success flag per row that agrees with the model; queries are counted by the
oracle, never reported by the solver; black-box solvers get no gradients.
"""

import pytest
import torch

from bench.contract.results import CFResult
from solvers import SOLVERS

# Small budgets so every solver (alibi's TF-1 solvers included) runs here in seconds.
QUICK = {
    "growing_spheres": dict(n_in_layer=500),
    "alibi_proto": dict(max_iterations=50, n_per_class=50),
    "alibi_proto_numgrad": dict(max_iterations=5, c_steps=1, n_per_class=50, timeout_s=60),
    "alibi_wachter": dict(max_iter=5, max_lam_steps=1, timeout_s=60),
    "alibi_rl": dict(latent_dim=8, train_steps=20, batch_size=20, fit_rows=500),
    **{name: dict(max_queries=300) for name in ("hopskipjump", "boundary_attack", "sign_opt")},
}
N = 2


def _params(name):
    cls = SOLVERS.get(name)
    fields = cls.Params.__dataclass_fields__
    return {k: v for k, v in QUICK.get(name, {}).items() if k in fields}


@pytest.mark.parametrize("name", SOLVERS.names())
def test_solver_contract(name, oracle, errors, mnist):
    cls = SOLVERS.get(name)
    view = oracle if cls.white_box else oracle.black_box()
    solver = cls(view, **_params(name))
    assert oracle.total_rows == 0, "binding must not touch the model"
    solver.fit(mnist.train.x, mnist.train.y)
    x, target = errors.x[:N], errors.true[:N]
    oracle.start(N)
    try:
        result = solver(x, target)
    finally:
        if hasattr(solver, "close"):
            solver.close()
    assert isinstance(result, CFResult)
    assert result.x_cf.shape == x.shape and result.x_cf.dtype == x.dtype and result.x_cf.device == x.device
    assert float(result.x_cf.min()) >= 0.0 and float(result.x_cf.max()) <= 1.0
    assert result.success.dtype == torch.bool and result.success.shape == (N,)
    assert len(result.reason) == N
    counts = oracle.queries.clone()
    assert (counts > 0).all(), "every instance's model queries are counted by the oracle"
    if not cls.white_box:
        assert (oracle.grad_queries == 0).all()
    claimed = result.success
    flipped = oracle.predict(result.x_cf) == target
    assert not (claimed & ~flipped).any(), "a claimed success must be valid for the model"
    for ok, why in zip(claimed.tolist(), result.reason):
        assert ok or why, "a failed row says why"


@pytest.mark.parametrize("name", SOLVERS.names())
def test_params_are_frozen_and_validated(name, oracle):
    cls = SOLVERS.get(name)
    view = oracle if cls.white_box else oracle.black_box()
    with pytest.raises(ValueError, match="unknown key"):
        cls(view, not_a_param=1)
    defaults = cls.param_dict()
    assert defaults == cls.param_dict(), "defaults are documented values, not computed at bind time"
    assert cls.version and cls.paper.startswith("http")
