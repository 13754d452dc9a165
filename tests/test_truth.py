"""Truth agreement (bench.truth): known answers on hand-made boards, its place in `bench meta`, a real board."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kendalltau

import bench
from bench import meta, truth
from bench.board import FLAGS_BEGIN
from bench.results import Results
from bench.stats import kendall_tau

ROOT = Path(__file__).resolve().parent.parent
TRUTH = truth.TRUTH
QUALITY = {"m0": 0.9, "m1": 0.8, "m2": 0.65, "m3": 0.5, "m4": 0.4, "m5": 0.3, "random": 0.05}
LOWER = {"del_morf_zeros", "deletion_auc"}  # lower is better, as the registry declares them


def _board(scores: dict, n: int = 40, modes=("predicted",), seed: int = 0) -> Results:
    """A board of QUALITY's methods on n images: truth = quality + an image effect; metric = scores[name](truth)."""
    rng = np.random.default_rng(seed)
    image = rng.normal(0, 0.2, n)
    rows = []
    for mode in modes:
        for m, q in QUALITY.items():
            t = q + image + rng.normal(0, 0.02, n)
            for name, fn in {TRUTH: lambda t, m, mode: t, **scores}.items():
                rows += [dict(task="attribution", method=m, mode=mode, test_index=i, metric=name, value=v)
                         for i, v in enumerate(fn(t, m, mode))]
    metrics = [dict(name=k, higher_is_better=k not in LOWER) for k in [TRUTH, *scores]]
    return Results({}, pd.DataFrame(), pd.DataFrame(rows), {"attributions": {"metrics": metrics}})


def _noise(t, m, mode):
    return np.random.default_rng(sum(map(ord, m))).normal(0, 1, len(t))


def test_tau_b_is_kendalls_tau_b_with_ties_and_nans():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 4, (300, 7)).astype(float), rng.normal(size=(300, 7))
    a[rng.random(a.shape) < 0.15] = np.nan
    b[:5] = 1.0  # a constant ranking: undefined
    ours = truth.tau_b(a, b)
    assert np.allclose(ours, [kendall_tau(x, y) for x, y in zip(a, b)], equal_nan=True)
    assert np.isnan(ours[:5]).all() and np.isfinite(ours[5:]).sum() > 250


def test_a_monotone_metric_tracks_an_inverted_one_contradicts_noise_is_not_shown():
    res = _board({"insertion_auc": lambda t, m, mode: np.exp(3 * t),  # monotone in the truth, image by image
                  "del_morf_zeros": lambda t, m, mode: t,  # lower is better: the truth's order reversed
                  "q_faithfulness_correlation": _noise})
    out = truth.truth_agreement(res, n_boot=300).set_index("metric")
    assert set(out.index) == {"insertion_auc", "del_morf_zeros", "q_faithfulness_correlation"}
    up = out.loc["insertion_auc"]  # exp of (quality + a shared image effect): the same order on every resample
    assert (up.tau, up.tau_lo, up.tau_hi, up.verdict) == (1.0, 1.0, 1.0, truth.TRACKS)
    down = out.loc["del_morf_zeros"]
    assert (down.tau, down.tau_lo, down.tau_hi, down.verdict) == (-1.0, -1.0, -1.0, truth.CONTRADICTS)
    noise = out.loc["q_faithfulness_correlation"]
    assert noise.tau_lo < 0 < noise.tau_hi and noise.verdict == truth.NOT_SHOWN
    assert (out["n_methods"] == 6).all() and (out["n_images"] == 40).all()  # the random control left out
    assert set(truth.reasons(out.reset_index())) == {"del_morf_zeros"}


def test_the_random_control_is_left_out_and_nans_are_dropped_from_a_methods_mean():
    def scrambled(t, m, mode):  # m0's half of the images missing, m5 never scored, random ranked first
        v = t.copy() if m != "random" else np.full(len(t), 9.0)
        v[: len(v) // 2 if m == "m0" else len(v) if m == "m5" else 0] = np.nan
        return v

    res = _board({"insertion_auc": scrambled})
    row = truth.truth_agreement(res, n_boot=0).iloc[0]
    wide = res.instances.pivot_table(index="test_index", columns=["metric", "method"], values="value")
    real = [m for m in QUALITY if m not in ("random", "m5")]
    expected = kendalltau(wide["insertion_auc"][real].mean(), wide[TRUTH][real].mean()).statistic
    assert row.tau == pytest.approx(expected) and row.n_methods == 5 and row.n_images == 40
    assert np.isnan(row.tau_lo) and row.verdict == truth.NOT_SHOWN  # no resamples: no interval


def test_modes_are_separate_and_only_faithfulness_and_localisation_columns_are_scored():
    def per_mode(t, m, mode):
        return t if mode == "predicted" else -t

    res = _board({"srg_zeros": per_mode, "loc_auc": lambda t, m, mode: t, "q_sparseness": lambda t, m, mode: t,
                  "q_max_sensitivity": lambda t, m, mode: t}, modes=("predicted", "contrast"))
    out = truth.truth_agreement(res, n_boot=100)
    assert set(out["metric"]) == {"srg_zeros", "loc_auc"}  # not the truth itself, complexity or robustness
    by = out.set_index(["metric", "mode"])
    assert by.loc[("srg_zeros", "predicted"), "verdict"] == truth.TRACKS
    assert by.loc[("srg_zeros", "contrast"), "verdict"] == truth.CONTRADICTS
    assert by.loc[("loc_auc", "contrast"), "family"] == "localisation"
    assert truth.reasons(out) == {"srg_zeros": "contradicts the ground truth in mode contrast (tau -1.00 "
                                               "[-1.00, -1.00] vs relevance mass accuracy, 6 methods)"}
    assert [truth.family(m) for m in ("del_lerf_road", "road_srg", "contour_patch", "q_pixel_flipping", "q_mprt",
                                      "loc_pointing_game", "seconds")] == \
        ["faithfulness"] * 4 + ["", "localisation", ""]


def _reversed_but_beats_random(t, m, mode):
    """Beats the random control by far and ranks stably, but the real methods in the truth's reverse order."""
    return np.full(len(t), -5.0) if m == "random" else 1 - t


def test_meta_flags_a_metric_only_the_truth_catches_and_annotates_the_board(tmp_path):
    res = _board({"insertion_auc": lambda t, m, mode: t, "q_faithfulness_estimate": _reversed_but_beats_random,
                  "deletion_auc": lambda t, m, mode: t})  # deletion: lower is better, random (truth 0.05) ranks first
    tables = meta.summary([res], n_boot=50)
    t = tables["truth"].set_index("metric")
    assert t.loc["q_faithfulness_estimate", "verdict"] == truth.CONTRADICTS
    assert not t.loc["q_faithfulness_estimate", "caught_by_other_flags"]  # separates from random, stable ranking
    assert t.loc["deletion_auc", "caught_by_other_flags"]  # random ranks best: the separation flag catches it
    assert not t.loc["insertion_auc", "caught_by_other_flags"] and t.loc["insertion_auc", "verdict"] == truth.TRACKS
    flags = meta.flagged(tables)["attributions"]
    assert flags["q_faithfulness_estimate"].startswith("contradicts the ground truth (tau -1.00")
    assert "from random" in flags["deletion_auc"] and "contradicts the ground truth" in flags["deletion_auc"]
    assert "insertion_auc" not in flags
    names = {p.name for p in meta.write(tables, tmp_path / "m", "synthetic")}
    assert {"meta_truth.csv", "meta_truth.png"} <= names
    csv = pd.read_csv(tmp_path / "m" / "meta_truth.csv")
    assert list(csv.columns) == [*truth.COLUMNS, "caught_by_other_flags"] and len(csv) == 3
    md = (tmp_path / "m" / "meta.md").read_text()
    assert f"## {truth.SECTION}" in md and "![truth agreement](meta_truth.png)" in md
    assert "| `q_faithfulness_estimate` | faithfulness | -1.00 | [-1.00, -1.00] | contradicts the truth | 6 x 40 | no |" in md
    (tmp_path / "attributions.md").write_text("# board\n")
    meta.annotate(tmp_path, tables, "m/meta.md")
    block = (tmp_path / "attributions.md").read_text().split(FLAGS_BEGIN)[1]
    assert "- `q_faithfulness_estimate`: contradicts the ground truth (tau -1.00 [-1.00, -1.00] vs relevance " \
           "mass accuracy, 6 methods)" in block


def test_the_site_meta_page_shows_the_truth_table_and_figure(tmp_path):
    from bench.site.study import meta_page

    res = _board({"insertion_auc": lambda t, m, mode: t, "q_faithfulness_estimate": _reversed_but_beats_random})
    meta.write(meta.summary([res], n_boot=20), tmp_path, "synthetic")
    html = meta_page(tmp_path, "synthetic/meta", 1)
    assert f'<h2 id="truth">{truth.SECTION}?</h2>' in html and 'src="meta_truth.png"' in html
    assert "Truth agreement: per metric, Kendall tau" in html  # the figure's own caption, not the generic one
    assert 'id="meta-truth"' in html and "contradicts the truth" in html and "caught_by_other_flags" in html
    assert 'id="truth-col-caught_by_other_flags"' in html and 'id="truth-col-tau_lo"' in html
    (tmp_path / "meta_truth.csv").unlink()
    assert 'id="truth"' not in meta_page(tmp_path, "synthetic/meta", 1)


def test_a_board_without_the_truth_gets_no_truth_table(tmp_path):
    res = _board({"insertion_auc": lambda t, m, mode: t})
    res.instances = res.instances[res.instances["metric"] != TRUTH]
    assert not truth.has_truth(res) and truth.truth_agreement(res).empty
    tables = meta.summary([res], n_boot=20)
    assert "truth" not in tables
    names = {p.name for p in meta.write(tables, tmp_path, "x")}
    assert not any("truth" in n for n in names) and truth.SECTION not in (tmp_path / "meta.md").read_text()


def _controlled_boards() -> list[Path]:
    return sorted(p.parent for p in (ROOT / "leaderboards").rglob("attributions_instances.csv")
                  if TRUTH in p.open().readline())


@pytest.mark.skipif(not _controlled_boards(), reason="no published board carries a ground-truth mask yet")
def test_a_published_controlled_board():
    """On a real board with masks: each tau is the scipy tau-b of the methods' means, inside its interval."""
    res = bench.load(_controlled_boards()[0])
    out = truth.truth_agreement(res, n_boot=200)
    assert len(out) and set(out["family"]) <= {"faithfulness", "localisation"}
    inst = res.instances[(res.instances["task"] == "attribution") & (res.instances["method"] != truth.CONTROL)]
    for r in out.itertuples():
        s = inst[inst["mode"] == r.mode]
        means = s.pivot_table(index="method", columns="metric", values="value", aggfunc="mean")
        up = bench.board.directions(res.provenance.values())
        a = means[r.metric] * (1 if up.get(r.metric, True) else -1)
        assert r.tau == pytest.approx(kendall_tau(a.to_numpy(), means[r.truth].to_numpy()), nan_ok=True)
        assert not np.isfinite(r.tau_lo) or r.tau_lo - 1e-9 <= r.tau <= r.tau_hi + 1e-9
