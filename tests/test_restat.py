"""A board's statistics are a function of its per-instance scores: restat reproduces a run's tables exactly,
and the counterfactual board's common valid subset compares solvers on the same errors."""

import shutil

import numpy as np
import pandas as pd
import pytest

import bench
from bench.leaderboard import EntryScores, MetricMeta
from bench.restat import restat_board
from bench.tasks.common_subset import compare

STEMS = ("counterfactuals", "attributions", "counterfactuals_common", "counterfactuals_pairs")


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory, cache_dir):
    out = tmp_path_factory.mktemp("runs")
    r = bench.run("tiny", limit=14, out=str(out), cache_dir=cache_dir, store=str(out / "s.sqlite"), device="cpu")
    return r.folder


@pytest.mark.slow
def test_restat_rewrites_a_run_board_byte_for_byte(run_folder, tmp_path):
    copy = tmp_path / "board"
    shutil.copytree(run_folder, copy)
    for stem in ("counterfactuals", "attributions"):  # damage the aggregate: restat must rebuild it
        (copy / f"{stem}.csv").write_text((copy / f"{stem}.csv").read_text().replace("[", "").replace("0.", "9."))
    restat_board(copy)
    for stem in STEMS:
        assert (copy / f"{stem}.csv").read_text() == (run_folder / f"{stem}.csv").read_text(), stem
    for stem in ("counterfactuals", "attributions"):
        assert (copy / f"{stem}.md").read_text() == (run_folder / f"{stem}.md").read_text(), stem


@pytest.mark.slow
def test_common_subset_table_is_the_mean_over_errors_every_solver_made_valid(run_folder):
    inst = pd.read_csv(run_folder / "counterfactuals_instances.csv")
    common = pd.read_csv(run_folder / "counterfactuals_common.csv")
    valid = inst[inst.validity == 1]
    shared = set.intersection(*(set(g.test_index) for _, g in valid.groupby("method")))
    assert len(shared) >= 10 and (common.n == len(shared)).all()
    for _, r in common.iterrows():
        mine = valid[(valid.method == r["method"]) & valid.test_index.isin(shared)]
        assert r["l2"] == pytest.approx(mine.l2.mean(), rel=1e-5)
    pairs = pd.read_csv(run_folder / "counterfactuals_pairs.csv")
    assert (pairs.p_holm >= pairs.p - 1e-12).all() and set(pairs.metric) >= {"l2", "queries"}
    assert "## On the common valid subset" in (run_folder / "counterfactuals.md").read_text()


def test_common_subset_leaves_out_small_solvers_and_tests_pairs():
    metas = [MetricMeta("validity", True, False, "", "1", "proportion"), MetricMeta("l2", False, True, "", "1")]
    idx = np.arange(20)
    rng = np.random.default_rng(0)
    ok = np.ones(20, bool)
    rows = [EntryScores("a", "", "1", idx, ok, {"validity": ok * 1.0, "l2": 1 + rng.random(20)}, 20),
            EntryScores("b", "", "1", idx, ok, {"validity": ok * 1.0, "l2": 2 + rng.random(20)}, 20),
            EntryScores("tiny", "", "1", idx[:3], ok[:3], {"validity": np.ones(3), "l2": np.zeros(3)}, 20)]
    c = compare(rows, metas, n_boot=100)
    assert c.solvers == ["a", "b"] and "tiny" in c.left_out and len(c.index) == 20
    assert list(c.pairs.metric) == ["l2"] and c.pairs.p_holm.iloc[0] < 0.05
    assert bool(c.table.loc[0, "l2_best"]) and "validity" not in c.table  # validity is 1 there by construction
    assert any("a < b" in line for line in c.markdown(metas))


def test_no_common_subset_is_said_and_its_table_still_parses(tmp_path):
    metas = [MetricMeta("validity", True, False, "", "1", "proportion"), MetricMeta("l2", False, True, "", "1")]
    ok = np.ones(4, bool)
    rows = [EntryScores(m, "", "1", np.arange(4), ok, {"validity": ok * 1.0, "l2": np.ones(4)}, 4) for m in "ab"]
    c = compare(rows, metas)
    assert c.solvers == [] and set(c.left_out) == {"a", "b"}
    c.table.to_csv(tmp_path / "t.csv", index=False)
    assert list(pd.read_csv(tmp_path / "t.csv").columns) == ["method", "n"]
    assert "No comparison on a common subset" in "\n".join(c.markdown(metas))
