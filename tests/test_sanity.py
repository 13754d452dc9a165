"""Sanity built into the suite: explanations must beat a random control and react to the model.

On the real default CNN and all its errors: Integrated Gradients and Saliency must beat the
seeded random control on deletion AUC (paired test, as the leaderboard reports it), and the
model-parameter-randomisation test must show their maps changing when the weights are
randomised (while the model-independent random control does not change at all).
"""

import numpy as np
import torch

from bench.contract.metrics import AttrBatch, MetricContext
from bench.leaderboard import EntryScores
from bench.tasks.attributions import sanity_against_control
from metrics import ATTR_METRICS
from solvers import ATTRIBUTIONS

METHODS = ("saliency", "ig", "random")


def _batches(oracle, errors, mnist):
    out = {}
    for name in METHODS:
        method = ATTRIBUTIONS.get(name)(oracle).fit(mnist.train.x, mnist.train.y)
        attr = method(errors.x, errors.pred).attr
        out[name] = AttrBatch(errors.x, attr, errors.pred, torch.zeros(len(errors.x)), method=name,
                              explain_fn=lambda x, t, m=method: m(x, t).attr)
    return out


def test_ig_and_saliency_beat_the_random_control_on_deletion(oracle, errors, mnist):
    """On the headline deletion (del_morf_zeros) where the board has it, else RISE's deletion_auc."""
    ctx = MetricContext(oracle=oracle, data=mnist)
    names = ("deletion_auc", "del_morf_zeros")
    batches = _batches(oracle, errors, mnist)
    scores = {(m, name): ATTR_METRICS.get(name)(b, ctx).numpy() for m, b in batches.items() for name in names}
    for shown in (names, names[:1]):
        rows = [EntryScores(m, "predicted", "1", errors.index.numpy(), np.ones(len(errors), bool),
                            {name: scores[(m, name)] for name in shown}, len(errors)) for m in batches]
        verdict = sanity_against_control(rows)
        for name in ("saliency", "ig"):
            v = verdict[(name, "predicted")]
            assert v["metric"] == shown[-1] and v["beats"], f"{name} is no better than random: {v}"
            assert v["deletion"] < v["random"] - 0.1


def test_randomising_the_weights_changes_the_explanations(oracle, errors, mnist, cnn):
    ctx = MetricContext(oracle=oracle, data=mnist)
    mprt = ATTR_METRICS.get("q_mprt")
    before = {k: v.detach().clone() for k, v in cnn[0].state_dict().items()}
    batches = _batches(oracle, errors, mnist)
    n = 12
    sims = {}
    for name, b in batches.items():
        small = AttrBatch(b.x[:n], b.attr[:n], b.explained[:n], b.seconds[:n], method=name, explain_fn=b.explain_fn)
        sims[name] = float(np.nanmean(mprt(small, ctx).numpy()))
    assert sims["random"] > 0.99, "the model-independent control cannot react to randomisation"
    for name in ("saliency", "ig"):
        assert sims[name] < 0.7, f"{name}: maps barely change under weight randomisation ({sims[name]:.3f})"
    after = cnn[0].state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "the model's weights are restored"
