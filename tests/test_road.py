"""ROAD's noisy linear imputation (Rong et al. 2022) on hand-computed cases, against its direct solve and Quantus."""

import numpy as np
import pytest
import torch

from metrics.road import linear_impute, linear_impute_exact, noisy_linear_impute, road_curves


def _square():
    return (torch.arange(25, dtype=torch.float64) ** 2 / 625).view(1, 1, 5, 5)


def test_a_removed_centre_pixel_is_the_weighted_mean_of_its_neighbours():
    x, removed = _square(), torch.zeros(1, 5, 5, dtype=torch.bool)
    removed[0, 2, 2] = True
    # edges (1/6): 7^2, 11^2, 13^2, 17^2; corners (1/12): 6^2, 8^2, 16^2, 18^2; over 625
    expected = ((49 + 121 + 169 + 289) / 6 + (36 + 64 + 256 + 324) / 12) / 625
    out = linear_impute(x, removed, tol=1e-12, dtype=torch.float64)
    assert float(out[0, 0, 2, 2]) == pytest.approx(expected, abs=1e-9) and expected == pytest.approx(0.258133, abs=1e-6)
    assert torch.equal(out[~removed[:, None].expand_as(out)], x[~removed[:, None].expand_as(x)])


def test_a_removed_corner_averages_over_its_in_image_neighbours_only():
    x, removed = _square(), torch.zeros(1, 5, 5, dtype=torch.bool)
    removed[0, 0, 0] = True
    expected = (x[0, 0, 0, 1] / 6 + x[0, 0, 1, 0] / 6 + x[0, 0, 1, 1] / 12) / (5 / 12)
    out = linear_impute(x, removed, tol=1e-12, dtype=torch.float64)
    assert float(out[0, 0, 0, 0]) == pytest.approx(float(expected), abs=1e-9)


def test_coupled_holes_equal_the_direct_solve_and_quantus(errors):
    from quantus.functions.perturb_func import noisy_linear_imputation

    x = errors.x[:3]
    rng = np.random.default_rng(0)
    removed = torch.from_numpy(rng.random((3, 28, 28)) < np.array([0.1, 0.5, 0.9])[:, None, None])
    ours, exact = linear_impute(x, removed), linear_impute_exact(x, removed)
    assert float((ours - exact).abs().max()) < 1e-6
    for i in range(3):
        q = noisy_linear_imputation(x[i].numpy(), np.flatnonzero(removed[i].numpy().ravel()), noise=0.0)
        assert np.abs(q - ours[i].numpy()).max() < 1e-6


def test_noise_touches_only_imputed_pixels_and_is_seeded(errors):
    x = errors.x[:2]
    removed = torch.zeros(2, 28, 28, dtype=torch.bool)
    removed[:, 10:15, 10:15] = True
    a = noisy_linear_impute(x, removed, 0.01, torch.Generator().manual_seed(1))
    b = noisy_linear_impute(x, removed, 0.01, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    keep = ~removed[:, None]
    assert torch.equal(a[keep], x[keep]) and 0.005 < float((a - linear_impute(x, removed))[~keep].std()) < 0.02


def test_road_orders_on_the_real_model(oracle, errors):
    """Removing the pixels saliency calls relevant hurts the explained class more than removing the rest."""
    from bench.contract.registry import ATTRIBUTIONS

    x, explained = errors.x[:16], errors.pred[:16]
    attr = ATTRIBUTIONS.get("saliency")(oracle)(x, explained, None).attr
    morf = road_curves(oracle, x, attr, explained, "morf")
    lerf = road_curves(oracle, x, attr, explained, "lerf")
    assert morf.shape == (16, 9) and float(morf.mean()) < float(lerf.mean())
    with pytest.raises(ValueError, match="morf"):
        road_curves(oracle, x, attr, explained, "sideways")
