"""Meta-evaluation on the published MNIST x cnn board: separation, agreement, stability."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bench
from bench import meta
from bench.board import FLAGS_BEGIN

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def board():
    return bench.load(ROOT / "leaderboards" / "mnist" / "cnn")


def test_separation_matches_the_boards_own_sanity_check(board):
    prov = board.provenance["attributions"]["sanity_vs_random"]
    [metric] = {v.get("metric", "deletion_auc") for v in prov.values()}  # the board's control-test metric
    sep = meta.separation(board).query("metric == @metric").set_index("method")
    for key, v in prov.items():  # the board's paired test against random, same data, same test
        assert sep.loc[key, "p"] == pytest.approx(v["p"])
        assert (sep.loc[key, "mean_diff"] > 0) == (v["deletion"] < v["random"])  # lower deletion = better


def test_agreement_is_a_symmetric_tau_matrix_with_unit_diagonal(board):
    out = meta.agreement(board, n_boot=50)
    tau, lo, hi = out["agreement"], out["agreement_lo"], out["agreement_hi"]
    m = tau.to_numpy(float)
    assert np.allclose(np.diag(m), 1.0) and np.allclose(m, m.T, equal_nan=True)
    assert np.nanmin(m) >= -1 and np.nanmax(m) <= 1
    # RISE's deletion AUC and the p0-normalised deletion onto zeros remove the same pixels in the same order
    assert tau.loc["deletion_auc", "del_morf_zeros"] > 0.8
    assert lo.loc["deletion_auc", "insertion_auc"] <= tau.loc["deletion_auc", "insertion_auc"] \
        <= hi.loc["deletion_auc", "insertion_auc"]


def test_agreement_leaves_the_random_control_out(board):
    """tau is over the real methods: equal to scipy's tau-b of the two metrics' means without `random`."""
    from scipy.stats import kendalltau

    tau = meta.agreement(board, n_boot=0)["agreement"].loc["deletion_auc", "insertion_auc"]
    means = {m: meta._wide(board, "attribution", m).mean() for m in ("deletion_auc", "insertion_auc")}
    real = [c for c in means["deletion_auc"].index if not c.startswith("random")]
    assert len(real) < len(means["deletion_auc"])  # the board has a random control to leave out
    assert tau == pytest.approx(kendalltau(means["deletion_auc"][real], means["insertion_auc"][real]).statistic)
    with_control = kendalltau(means["deletion_auc"], means["insertion_auc"]).statistic
    assert tau != pytest.approx(with_control)


def test_stability_is_perfect_across_identical_boards_and_high_under_bootstrap(board):
    same = meta.seed_stability([board, board], "attribution")
    assert np.allclose(same.dropna(), 1.0, atol=1e-12) and len(same.dropna()) >= 10  # tau-b of one ranking with itself
    boot = meta.bootstrap_stability(board, "counterfactual", n_boot=50)
    assert boot["validity"] == pytest.approx(1.0) or boot["validity"] > 0.8
    assert ((boot.dropna() > -1) & (boot.dropna() <= 1)).all()


def test_write_produces_tables_markdown_and_heatmap(board, tmp_path):
    paths = meta.write(meta.summary([board], n_boot=20), tmp_path, "mnist / cnn")
    names = {p.name for p in paths}
    assert {"meta_attributions.csv", "meta_agreement.csv", "meta_counterfactuals.csv", "meta.md",
            "meta_agreement.png"} <= names
    table = pd.read_csv(tmp_path / "meta_attributions.csv")
    assert set(table.columns) >= {"metric", "separated_share", "median_d_z", "bootstrap_tau"}
    md = (tmp_path / "meta.md").read_text()
    header = next(ln for ln in md.splitlines() if ln.startswith("| metric"))
    assert "no_control" not in header  # the reasons are listed below the tables, not in a column
    none = table.set_index("metric")["no_control"].fillna("")
    assert none["q_sparseness"].startswith("a function of the map's value histogram") and none["deletion_auc"] == ""
    assert "- `q_sparseness`: a function of the map's value histogram" in md  # said, not tested against random


def _shuffled(instances: pd.DataFrame, metric: str = "del_morf_zeros", seed: int = 0) -> pd.DataFrame:
    """A metric that cannot rank: `metric`'s scores of each error dealt out to the methods at random."""
    rng = np.random.default_rng(seed)
    one = instances[(instances["task"] == "attribution") & (instances["metric"] == metric)].copy()
    one["value"] = one.groupby("test_index")["value"].transform(lambda v: rng.permutation(v.to_numpy()))
    return one.assign(metric="shuffled")


def test_flags_name_weak_metrics_and_annotate_is_idempotent(board, tmp_path):
    import copy
    import shutil

    weak = copy.copy(board)
    weak.instances = pd.concat([board.instances, _shuffled(board.instances)], ignore_index=True)
    tables = meta.summary([weak], n_boot=20)
    attr = tables["attributions"].set_index("metric")
    # scores dealt out at random separate hardly any method from the random control: flagged
    assert attr.loc["shuffled", "separated_share"] < 0.5 and "from random" in attr.loc["shuffled", "flag"]
    assert attr.loc["del_morf_zeros", "flag"] == "" and attr.loc["deletion_auc", "flag"] == ""  # 96%, stable
    for name in ("attributions.md", "counterfactuals.md"):
        shutil.copy(ROOT / "leaderboards" / "mnist" / "cnn" / name, tmp_path / name)
    before = (tmp_path / "attributions.md").read_text()
    before = before.split(FLAGS_BEGIN)[0]  # the published board carries its own flags block
    meta.annotate(tmp_path, tables, "meta.md")
    once = (tmp_path / "attributions.md").read_text()
    meta.annotate(tmp_path, tables, "meta.md")
    assert (tmp_path / "attributions.md").read_text() == once  # replaced, not appended twice
    assert once.startswith(before.rstrip("\n")) and "`shuffled`: separates" in once
    assert once.count(FLAGS_BEGIN) == 1 and "(meta.md)" in once
    assert "## Flagged metrics" in (meta.write(tables, tmp_path / "m", "x")[-1]).read_text()


def test_meta_command_writes_tables_and_annotates_the_boards(tmp_path, capsys):
    """`bench meta <board> --annotate`: the tables in --out, the flags under the board's tables."""
    import shutil

    from bench.cli import main

    board = tmp_path / "cnn"
    shutil.copytree(ROOT / "leaderboards" / "mnist" / "cnn", board, ignore=shutil.ignore_patterns("*.png", "meta"))
    for name in ("attributions.md", "counterfactuals.md"):  # as published before any meta-evaluation
        (board / name).write_text((board / name).read_text().split(FLAGS_BEGIN)[0])
    inst = pd.read_csv(board / "attributions_instances.csv")  # add a metric that cannot rank (scores shuffled)
    rng = np.random.default_rng(0)
    inst["shuffled"] = inst.groupby("test_index")["del_morf_zeros"].transform(lambda v: rng.permutation(v.to_numpy()))
    inst.to_csv(board / "attributions_instances.csv", index=False)
    assert main(["meta", str(board), "--out", str(tmp_path / "m"), "--n-boot", "10", "--annotate"]) == 0
    assert "meta-evaluation of 1 board(s)" in capsys.readouterr().out
    table = pd.read_csv(tmp_path / "m" / "meta_attributions.csv")
    assert set(table.loc[table["flag"].notna(), "metric"]) == {"shuffled"}
    md = (board / "attributions.md").read_text()
    assert md.count(FLAGS_BEGIN) == 1 and "(../m/meta.md)" in md and "`shuffled`" in md


def test_separation_shares_are_corrected_within_each_metric(board):
    """Each metric's tests (every method) are one family: BH and Holm-adjusted p as scipy / by hand give them."""
    from scipy.stats import false_discovery_control

    sep = meta.corrected(meta.separation(board))
    for _, g in sep.groupby("metric"):
        assert g["p_bh"].to_numpy() == pytest.approx(false_discovery_control(g["p"].to_numpy(), method="bh"))
        order = np.argsort(g["p"].to_numpy(), kind="stable")
        holm = np.maximum.accumulate((len(g) - np.arange(len(g))) * g["p"].to_numpy()[order]).clip(max=1)
        assert g["p_holm"].to_numpy()[order] == pytest.approx(holm)
        assert (g["separated"] == ((g["mean_diff"] > 0) & (g["p_bh"] < 0.05))).all()
    assert (sep["p_holm"] >= sep["p"]).all() and (sep["p_bh"] >= sep["p"] - 1e-15).all()
