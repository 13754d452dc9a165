"""Metrics, declared here without heavy imports. Each is a pure function -> Tensor[N].

CF_METRICS score counterfactuals, ATTR_METRICS score attribution maps. Definitions are
pinned in the functions' docstrings and in leaderboards/README.md.
"""

from bench.registry import Registry

CF_METRICS = Registry("cf_metric")
ATTR_METRICS = Registry("attr_metric")

_CF = "metrics.counterfactual"
for _name, _summary in [
    ("validity", "argmax f(x_cf) == target (share of errors flipped to their true class)"),
    ("target_prob", "softmax probability of the target class at x_cf"),
    ("l2", "sqrt(sum (x_cf - x)^2) in [0,1] pixel space (not squared)"),
    ("l1", "sum |x_cf - x|"),
    ("l0", "pixels with |x_cf - x| > 1e-3"),
    ("sparsity", "l0 / number of pixels (fraction changed)"),
    ("tv", "anisotropic total variation of delta = x_cf - x"),
    ("queries", "model input rows evaluated by the solver (counted by the oracle)"),
    ("grad_queries", "model rows back-propagated by the solver (counted by the oracle)"),
    ("seconds", "wall time per instance (batch time / batch size)"),
]:
    CF_METRICS.declare(_name, f"{_CF}:{_name}", _summary)

_PL = "metrics.plausibility"
for _name, _summary in [
    ("knn_ratio", "mean distance of x_cf to its k nearest target-class training images / same for x"),
    ("im1", "IM1 (Van Looveren & Klaise): AE_target recon error / AE_original recon error at x_cf"),
    ("im2", "IM2 (Van Looveren & Klaise): ||AE_target(x_cf) - AE_all(x_cf)||^2 / ||x_cf||_1"),
    ("oracle_agreement", "1 if an independently trained second classifier also assigns x_cf to target"),
]:
    CF_METRICS.declare(_name, f"{_PL}:{_name}", _summary)

# Attribution metrics (ATTR_METRICS) are declared below.
