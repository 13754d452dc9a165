"""The oracle counts what methods cost, per instance, and a black-box view refuses gradients."""

import pytest
import torch

from bench.contract.oracle import GradientRefused


def test_forward_rows_are_counted_per_owner(oracle, errors):
    x = errors.x[:4]
    oracle.start(4)
    oracle.probs(x)  # one row each
    oracle.logits(torch.cat([x, x[:1]]), owner=torch.tensor([0, 1, 2, 3, 0]))
    assert oracle.queries.tolist() == [3, 2, 2, 2]
    assert oracle.grad_queries.tolist() == [0, 0, 0, 0]


def test_gradient_rows_count_only_when_backpropagated(oracle, errors):
    x = errors.x[:3].clone().requires_grad_(True)
    oracle.start(3)
    out = oracle.logits_grad(x)
    assert oracle.grad_queries.sum() == 0
    out[:, 0].sum().backward()
    assert oracle.grad_queries.tolist() == [1, 1, 1]
    assert oracle.queries.tolist() == [1, 1, 1]
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_expanded_batches_are_spread_evenly(oracle, errors):
    oracle.start(2)
    oracle.logits(errors.x[:2].repeat(5, 1, 1, 1))
    assert oracle.queries.tolist() == [5, 5]


def test_black_box_view_shares_counters_and_refuses_gradients(oracle, errors):
    bb = oracle.black_box()
    oracle.start(2)
    bb.predict(errors.x[:2])
    assert oracle.queries.tolist() == [1, 1]
    for name in ("logits_grad", "forward_fn", "layer", "unwrap"):
        with pytest.raises(GradientRefused):
            getattr(bb, name)


def test_oracle_reproduces_the_model_and_chunks(oracle, cnn, mnist):
    x = mnist.test.x[:1000]
    oracle.batch_size = 128
    with torch.no_grad():
        direct = cnn[0](x)
    assert torch.allclose(oracle.logits(x), direct, atol=1e-5)


def test_throughput_is_measured_uncounted(oracle, errors):
    oracle.start(2)
    tp = oracle.throughput(errors.x[:7], rows=600, repeats=2)  # 7 images tiled to 600 rows
    assert tp["rows"] == 600 and tp["batch_size"] == oracle.batch_size
    assert tp["rows_per_s"] == pytest.approx(600 / tp["seconds"], rel=1e-3) and tp["rows_per_s"] > 100
    assert oracle.queries.tolist() == [0, 0] and oracle.total_rows == 0  # a yardstick, not a query
    with pytest.raises(ValueError, match="at least one input row"):
        oracle.throughput(errors.x[:0])


def test_optimised_forward_agrees_with_the_model_and_counts_the_same(cnn, errors):
    from bench.contract.oracle import FAST_TOLERANCE, Oracle

    eager, fast = Oracle(cnn[0], "cpu", fast=False), Oracle(cnn[0], "cpu")
    x = errors.x
    for o in (eager, fast):
        o.start(len(x))
    a, b = eager.logits(x), fast.logits(x)
    assert fast._fast and not eager._fast  # the frozen TorchScript copy is in use
    assert torch.allclose(a, b, atol=FAST_TOLERANCE, rtol=FAST_TOLERANCE)
    assert torch.equal(a.argmax(1), b.argmax(1))
    assert torch.equal(eager.queries, fast.queries)
    assert fast.throughput(x, rows=512, repeats=1)["optimised"] is True
    assert eager.throughput(x, rows=512, repeats=1)["optimised"] is False


def test_a_model_torchscript_cannot_take_runs_eagerly(errors):
    from bench.contract.oracle import Oracle

    class Untraceable(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(784, 10)

        def forward(self, x):
            if torch.jit.is_tracing():
                raise RuntimeError("no tracing here")
            return self.fc(x.flatten(1))

    o = Oracle(Untraceable(), "cpu")
    out = o.logits(errors.x[:5])
    assert o._fast is False and out.shape == (5, 10)


def test_the_portable_copy_rebuilds_its_optimised_forward(cnn, errors):
    import pickle

    from bench.contract.oracle import Oracle

    o = Oracle(cnn[0], "cpu")
    o.logits(errors.x[:3])
    copy = pickle.loads(pickle.dumps(o.portable()))
    assert copy._inner._fast is None  # not pickled: built again where it runs
    assert torch.allclose(copy.logits(errors.x[:3]), o.logits(errors.x[:3]), atol=1e-5)


def test_a_hooked_layer_sees_the_forward(cnn, errors):
    """Methods that watch a layer during a gradient-free call (Score-CAM) get the model itself."""
    from bench.contract.oracle import Oracle

    first = Oracle(cnn[0], "cpu")  # hooked on its very first call: nothing else runs the model then
    seen = []
    handle = first.layer(first.named_layer_for_cam()).register_forward_hook(lambda m, i, out: seen.append(out))
    try:
        first.logits(errors.x[:3])
    finally:
        handle.remove()
    assert len(seen) == 1 and len(seen[0]) == 3
    o = Oracle(cnn[0], "cpu")
    o.logits(errors.x[:2])
    assert o._fast
    seen = []
    handle = o.layer(o.named_layer_for_cam()).register_forward_hook(lambda m, i, out: seen.append(out.shape))
    try:
        o.logits(errors.x[:3])
    finally:
        handle.remove()
    assert seen and seen[0][0] == 3
