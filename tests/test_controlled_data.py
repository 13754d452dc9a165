"""Controlled datasets (bench.data.controlled): determinism, exact masks, and the mask check on a trained CNN.

The mask check, on each set's published cnn (its pinned reference weights, leaderboards/weights)
over the whole test split: accuracy must fall to about chance when the masked region is replaced
(by another image's same region, or zeroed for the decoy patch) and hold when everything outside
the mask is replaced; the shortcut model must score high where the slot follows the label and low
on the real test split, where it does not.
"""

import hashlib

import numpy as np
import pytest
import torch

from bench.data import controlled as C

# sha256 of the first 64 test images' (x, y, mask) of each set at SEED (a change means the set changed: bump VERSION)
GOLDEN = {"mnist-distractor": "4f89d2c8f15d361711270a58203d729f51ffeab907206a526e2d5301b8037d64",
          "mnist-decoy": "29dba5024c98930df062a54f0763039e14694b6627f0e4bb69b9e18ff19643b3",
          "mnist-decoy-shortcut": "77f3b74c5e08ddc369230e7ca6615868658a45ea22145f64cc71d93a9c0b518f"}


@pytest.fixture(scope="module")
def sets(mnist):
    return {name: C.build(name, mnist) for name in ("mnist-distractor", "mnist-decoy", "mnist-decoy-shortcut")}


def _sha(split, n=64):
    h = hashlib.sha256()
    for t in (split.x[:n], split.y[:n], split.mask[:n]):
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()


def test_registered_and_deterministic_from_the_seed(mnist, sets):
    from bench.data import DATASETS

    assert {"mnist-distractor", "mnist-decoy", "mnist-decoy-shortcut"} <= set(DATASETS.names())
    for name, data in sets.items():
        again = C.build(name, mnist)
        for s in C.SPLITS:
            a, b = getattr(data, s), getattr(again, s)
            assert isinstance(a, C.MaskedSplit) and _sha(a) == _sha(b), (name, s)
            assert a.x.shape == a.mask.shape == (len(getattr(mnist, s)), 1, 28, 28) and a.mask.dtype == torch.bool
            assert float(a.x.min()) >= 0.0 and float(a.x.max()) <= 1.0
        assert _sha(C.build(name, mnist, seed=1).test) != _sha(data.test), name  # the seed matters
        assert _sha(data.test) == GOLDEN[name], (name, _sha(data.test))  # same bytes in any process


def test_distractor_mask_is_the_label_half(mnist, sets):
    d = sets["mnist-distractor"].test
    assert d.mask[:, :, :, :14].all() and not d.mask[:, :, :, 14:].any()
    assert torch.equal(d.y, mnist.test.y)
    left = mnist.test.x[:, :, :, 0::2].add(mnist.test.x[:, :, :, 1::2]).div(2)  # the documented resize
    assert torch.allclose(d.x[:, :, :, :14], left, atol=1e-6)
    other = C.other_index(np.random.default_rng([C.SEED, 1, 2]), len(d.y))  # the documented stream: set 1, test
    assert (other != np.arange(len(other))).all()
    right = mnist.test.x[other][:, :, :, 0::2].add(mnist.test.x[other][:, :, :, 1::2]).div(2)
    assert torch.allclose(d.x[:, :, :, 14:], right, atol=1e-6)  # the other side: another digit, same resize
    # the right digit is independent of the label: its class agrees with the label about 10% of the time
    assert float((mnist.test.y[other] == d.y).float().mean()) < 0.15


def test_decoy_mask_is_exactly_the_patch_and_only_it_carries_the_label(mnist, sets):
    levels = torch.from_numpy(C.patch_level(np.arange(10)))
    for s in C.SPLITS:
        d, base = getattr(sets["mnist-decoy"], s), getattr(mnist, s)
        assert (d.mask.flatten(1).sum(1) == C.PATCH ** 2).all()
        grey = (d.x * d.mask).flatten(1).sum(1) / C.PATCH ** 2
        patch_class = (grey[:, None] - levels[None]).abs().argmin(1)
        assert torch.allclose(grey, levels[patch_class], atol=1e-6)  # one exact DecoyMNIST grey per patch
        assert torch.equal(d.x[~d.mask], base.x[~d.mask])  # outside the patch: the MNIST digit untouched
        assert torch.equal(patch_class, d.y)  # the label is the patch's grey level...
        assert float((base.y == d.y).float().mean()) < 0.15  # ...and not the digit's


def test_shortcut_mask_is_the_patch_whose_slot_is_the_label_in_training_only(mnist, sets):
    for s in C.SPLITS:
        d, base = getattr(sets["mnist-decoy-shortcut"], s), getattr(mnist, s)
        assert (d.mask.flatten(1).sum(1) == C.PATCH ** 2).all() and (d.x[d.mask] == 1.0).all()
        assert torch.equal(d.x[~d.mask], base.x[~d.mask]) and torch.equal(d.y, base.y)
        corner = d.mask[:, 0].float().flatten(1).argmax(1)  # the patch's top-left pixel
        slot = torch.tensor([C.SLOTS.index((int(i) // 28, int(i) % 28)) for i in corner])
        agree = float((slot == d.y).float().mean())
        assert agree == 1.0 if s != "test" else agree < 0.15, (s, agree)


def _pinned(name, data, tmp_path_factory):
    """The set's published cnn: its preset's model from the pinned reference weights (never trained here)."""
    from bench.config import make_config
    from bench.models.train import load_or_train

    cfg = make_config(name, cache_dir=str(tmp_path_factory.mktemp("cache")), device="cpu")
    model, meta = load_or_train(cfg, data, torch.device("cpu"), progress=False)
    assert meta["source"] == "reference", meta  # leaderboards/weights, pinned by sha256
    return model.eval()


def _same_mask_donors(mask):
    """For each image, another image with the identical mask (so a swap moves whole regions)."""
    keys = mask.flatten(1).numpy()
    donors = np.arange(len(keys))
    _, groups = np.unique(keys, axis=0, return_inverse=True)
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        donors[idx] = np.roll(idx, 1)
    return torch.from_numpy(donors)


def mask_check(model, split, n=None):
    """Accuracies on the first n (default all) images: intact, masked region replaced by a donor's,
    everything else replaced by a donor's, masked region zeroed."""
    from bench.models.train import accuracy

    x, y, m = split.x[:n], split.y[:n], split.mask[:n]
    donor = x[_same_mask_donors(m)]
    return dict(intact=accuracy(model, x, y, "cpu"),
                masked_replaced=accuracy(model, C.swap_region(x, m, donor), y, "cpu"),
                rest_replaced=accuracy(model, C.swap_region(x, ~m, donor), y, "cpu"),
                masked_zeroed=accuracy(model, x.masked_fill(m, 0.0), y, "cpu"))


@pytest.mark.parametrize("preset, name", [("mnist-distractor", "mnist-distractor"), ("mnist-decoy", "mnist-decoy"),
                                          ("mnist-distractor-resnet_cbam", "mnist-distractor")])
def test_a_trained_model_needs_the_masked_pixels_and_only_them(sets, preset, name, tmp_path_factory):
    data = sets[name]
    n = 2000 if "resnet" in preset else None  # the timm ResNet's forward is ~10x the cnn's on a CPU
    acc = mask_check(_pinned(preset, data, tmp_path_factory), data.test, n)  # the whole test split (cnn)
    print(preset, {k: round(v, 3) for k, v in acc.items()})
    assert acc["intact"] > 0.75, acc
    assert acc["masked_replaced"] < 0.25, acc  # about chance (0.1): the evidence is gone
    assert acc["rest_replaced"] > acc["intact"] - 0.08, acc  # nothing outside the mask mattered
    if name == "mnist-decoy":
        assert acc["masked_zeroed"] < 0.25, acc


def test_the_decoy_shortcut_is_lost_at_test(mnist, sets, tmp_path_factory):
    data = sets["mnist-decoy-shortcut"]
    model = _pinned("mnist-decoy-shortcut", data, tmp_path_factory)
    from bench.models.train import accuracy

    rng = np.random.default_rng(7)
    x, y = mnist.test.x[:, 0].numpy(), mnist.test.y.numpy()
    with_shortcut = C.masked_split(*C.shortcut_split(x, y, rng, shortcut=True))
    acc_with = accuracy(model, with_shortcut.x, with_shortcut.y, "cpu")
    acc_without = accuracy(model, data.test.x, data.test.y, "cpu")
    print("mnist-decoy-shortcut", dict(test_with_shortcut=round(acc_with, 3), test_without=round(acc_without, 3)))
    assert acc_with > 0.9 and acc_without < acc_with - 0.3, (acc_with, acc_without)
