"""Intervals by kind, paired tests and corrections, each against scipy or a hand-computed case."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from bench import leaderboard
from bench.stats import (
    bh,
    cell,
    holm,
    kendall_tau,
    mean_ci,
    paired_pvalue,
    proportion_ci,
    t_interval,
    timing_cell,
)


def test_a_5_of_5_proportion_gets_the_wilson_interval_not_a_zero_width_one():
    c = proportion_ci([1, 1, 1, 1, 1])
    ref = st.binomtest(5, 5).proportion_ci(method="wilson")
    assert (c.mean, c.n, c.method) == (1.0, 5, "wilson")
    assert (c.lo, c.hi) == pytest.approx((ref.low, ref.high)) and c.lo == pytest.approx(0.5655, abs=1e-4)
    assert c.hi == 1.0 and c.lo < c.hi
    k = proportion_ci([1, 0, 0, 1, 1, 1, 0, 1, 1, 1])  # 7/10
    assert (k.lo, k.hi) == pytest.approx((0.3968, 0.8922), abs=1e-4)  # Wilson 1927, by hand
    with pytest.raises(ValueError, match="0/1"):
        proportion_ci([0.5, 1.0])


def test_a_constant_sample_or_one_value_gets_no_interval():
    for v in ([0.25] * 12, [3.0]):
        c = mean_ci(v)
        assert np.isnan(c.lo) and np.isnan(c.hi) and c.method == "none" and c.mean == v[0]
    row = pd.Series({"m": 0.25, "m_lo": np.nan, "m_hi": np.nan, "m_n": 12, "m_ci": "none"})
    assert leaderboard.fmt_cell(row, "m") == "0.250 (no CI: constant)"


def test_a_normal_sample_gets_scipys_bca_interval_seeded():
    v = np.random.default_rng(3).normal(2.0, 1.0, 60)
    c = mean_ci(v, n_boot=2000, seed=7)
    ref = st.bootstrap((v,), np.mean, n_resamples=2000, method="BCa", random_state=np.random.default_rng(7))
    assert c.method == "bca"
    assert (c.lo, c.hi) == (ref.confidence_interval.low, ref.confidence_interval.high)
    half = 1.96 / np.sqrt(60)
    assert c.lo == pytest.approx(v.mean() - half, abs=0.06) and c.hi == pytest.approx(v.mean() + half, abs=0.06)
    assert mean_ci(v, seed=1) == mean_ci(v, seed=1)


def test_timing_has_no_per_instance_interval_and_kinds_dispatch():
    c = timing_cell([0.02, 0.02, 0.02, 0.05])
    assert c.method == "timing" and np.isnan(c.lo) and c.mean == pytest.approx(0.0275)
    assert cell([1, 0, 1], "proportion").method == "wilson" and cell([0.1, 0.3], "timing").method == "timing"


def test_t_interval_over_seed_means_matches_scipy_and_is_wider_than_the_range():
    seeds = np.array([0.31, 0.35, 0.28])
    c = t_interval(seeds)
    lo, hi = st.t.interval(0.95, 2, loc=seeds.mean(), scale=st.sem(seeds))
    assert (c.lo, c.hi) == pytest.approx((lo, hi)) and c.method == "t"
    assert c.lo < seeds.min() and c.hi > seeds.max()


def test_holm_matches_a_hand_computed_example():
    # p sorted: 0.005 (x4 = 0.02), 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04 -> max 0.06)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    out = holm([0.2, np.nan, 0.6])
    assert np.isnan(out[1]) and out[[0, 2]] == pytest.approx([0.4, 0.6])
    assert bh([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.02, 0.04, 0.04, 0.02])


def test_sign_flip_is_exact_for_small_n_with_its_floor():
    assert paired_pvalue(np.ones(5), np.zeros(5)) == pytest.approx(2 / 2 ** 5)
    assert paired_pvalue(np.arange(6.0), np.arange(6.0)) == 1.0


def test_kendall_tau_is_scipys_tau_b():
    a, b = np.array([1, 2, 3, 4, 5.0]), np.array([2, 1, 3, 5, 4.0])
    assert kendall_tau(a, b) == pytest.approx(st.kendalltau(a, b).statistic)
    assert np.isnan(kendall_tau([1, 1, 1.0], [1, 2, 3.0]))


def test_best_marks_need_n_10_and_are_holm_corrected():
    meta = [leaderboard.MetricMeta("s", True, False, "score", "1")]
    rng = np.random.default_rng(0)
    idx = np.arange(30)
    rows = [leaderboard.EntryScores("small", "", "1", idx[:5], np.ones(5, bool), {"s": np.full(5, 9.0) + rng.random(5)}, 30),
            leaderboard.EntryScores("a", "", "1", idx, np.ones(30, bool), {"s": 1 + rng.normal(0, 1, 30)}, 30),
            leaderboard.EntryScores("b", "", "1", idx, np.ones(30, bool), {"s": rng.normal(0, 1, 30)}, 30)]
    df = leaderboard.aggregate(rows, meta, n_boot=200)
    assert not df.loc[0, "s_best"] and df.loc[1, "s_best"]  # the 5-row subset is never best
    assert df.loc[1, "s_p_next_holm"] == df.loc[1, "s_p_next"] < 0.05  # a family of one test
    md = leaderboard.to_markdown(df, meta, "T", [])
    assert "| small | 5/30 (subset) | 9.36" in md and "Holm" in md and "| a | 30/30 | **0.851 [" in md


def test_a_lone_qualifying_row_is_not_best():
    meta = [leaderboard.MetricMeta("s", True, False, "score", "1")]
    idx = np.arange(12)
    rows = [leaderboard.EntryScores("few", "", "1", idx[:5], np.ones(5, bool), {"s": np.full(5, 9.0)}, 12),
            leaderboard.EntryScores("one", "", "1", idx, np.ones(12, bool), {"s": np.linspace(0, 1, 12)}, 12)]
    df = leaderboard.aggregate(rows, meta, n_boot=100)
    assert not df["s_best"].any() and df["s_p_next"].isna().all()


def test_hierarchical_interval_known_answers_and_coverage():
    """A (seeds x images) matrix: the mean of every entry; constant: no interval (a constant 0/1 one: Wilson);
    ~95% coverage by simulation."""
    from bench.stats import hierarchical

    v = np.arange(12, dtype=float).reshape(3, 4)
    c = hierarchical(v, n_boot=500)
    assert c.mean == pytest.approx(5.5) and c.method == "hierarchical" and c.lo < 5.5 < c.hi
    assert hierarchical(np.full((3, 5), 0.2)).method == "none"
    assert hierarchical(np.ones((1, 5))).method == "none"  # one seed: the seed variance is unknown
    # every row valid on every seed (a 0/1 score): no draw moves it, the pooled rows' Wilson interval bounds it
    import scipy.stats as st

    c = hierarchical(np.ones((3, 296)))
    ci = st.binomtest(888, 888).proportion_ci(method="wilson")
    assert c.method == "wilson-pooled" and c.mean == 1.0 and (c.lo, c.hi) == pytest.approx((ci.low, ci.high))
    assert c.lo < 1.0 and hierarchical(np.zeros((3, 20))).hi > 0.0
    # coverage of the two-level model value = mu + seed effect + image effect + noise
    rng, hits, mu = np.random.default_rng(0), 0, 1.0
    for _ in range(150):
        seed_fx, image_fx = rng.normal(0, 0.1, (5, 1)), rng.normal(0, 0.3, (1, 60))
        c = hierarchical(mu + seed_fx + image_fx + rng.normal(0, 0.1, (5, 60)), n_boot=400, seed=int(rng.integers(1e6)))
        hits += c.lo <= mu <= c.hi
    assert 0.85 <= hits / 150 <= 1.0  # percentile bootstrap over 5 seeds undercovers a little, never wildly


def test_hierarchical_difference_is_paired_by_image():
    """Shared images cancel in a difference: b = a + 0.05 exactly gives 0.05 with a zero-width interval."""
    from bench.stats import detectable_from_se, hierarchical_difference

    rng = np.random.default_rng(1)
    a = rng.normal(0.5, 0.3, (1, 200)).repeat(3, axis=0)  # seeds agree; images vary a lot
    d = hierarchical_difference(a + 0.05, a, n_boot=500)
    assert d.diff == pytest.approx(0.05) and d.lo == pytest.approx(0.05) and d.hi == pytest.approx(0.05)
    assert d.p == pytest.approx(1 / 500)  # every draw on one side: the bootstrap's floor
    same = hierarchical_difference(a, a, n_boot=500)
    assert same.diff == 0 and same.p == 1.0
    noisy = hierarchical_difference(a + rng.normal(0, 0.2, a.shape), a, n_boot=500)
    assert noisy.lo < 0 < noisy.hi and noisy.p > 0.05
    assert detectable_from_se(noisy.se) == pytest.approx(2.8016 * noisy.se, rel=1e-3)
    with pytest.raises(ValueError, match="images must be the same"):
        hierarchical_difference(a, a[:, :10])
