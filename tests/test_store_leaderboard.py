"""Store (resumable, exact round trip), statistics and leaderboard formatting."""

import numpy as np
import pandas as pd

from bench import board, leaderboard
from bench.stats import mean_ci, paired_pvalue
from bench.store import Store, entry_key


def test_store_round_trip_and_resume(tmp_path):
    store = Store(tmp_path / "r.sqlite")
    key = entry_key(method="m", params={"a": 1})
    assert key != entry_key(method="m", params={"a": 2})
    art = np.random.default_rng(0).random((1, 28, 28)).astype(np.float32)
    store.add_records(key, [dict(test_index=7, success=True, reason="", queries=3, grad_queries=2,
                                 seconds=0.1, artifact=art)])
    assert store.done_indices(key) == {7}
    rec = store.records(key)[0]
    assert np.array_equal(rec["artifact"], art) and rec["queries"] == 3 and rec["success"]
    store.add_scores(key, "l2", "1", [7], [0.25])
    store.add_scores(key, "nanmetric", "1", [7], [float("nan")])
    assert store.scored_indices(key, "l2", "1") == {7}
    assert store.scores(key, "l2", "1", [7, 8]).tolist()[0] == 0.25
    assert np.isnan(store.scores(key, "l2", "1", [7, 8])[1])
    assert np.isnan(store.scores(key, "nanmetric", "1", [7])[0])
    assert Store(tmp_path / "r.sqlite").done_indices(key) == {7}  # a new process sees it


def test_nan_scores_are_counted_not_averaged():
    c = mean_ci([1.0, np.nan, 3.0, np.inf])
    assert (c.mean, c.n, c.n_nan) == (2.0, 2, 2)


def test_paired_test_detects_a_shift_and_not_noise():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, 80)
    assert paired_pvalue(a + 0.5, a) < 0.01
    assert paired_pvalue(a + rng.normal(0, 0.01, 80), a) > 0.05


def test_aggregate_and_markdown_mark_direction_and_valid_only(tmp_path):
    meta = [leaderboard.MetricMeta("validity", True, False, "flipped", "1", "proportion"),
            leaderboard.MetricMeta("l2", False, True, "distance", "1")]
    idx = np.arange(4)
    rows = [leaderboard.EntryScores("a", "", "1", idx, np.array([1, 1, 0, 0], bool),
                                    {"validity": np.array([1., 1, 0, 0]), "l2": np.array([1., 3, 100, 100])}, 5),
            leaderboard.EntryScores("b", "", "1", idx, np.ones(4, bool),
                                    {"validity": np.ones(4), "l2": np.array([2., 2, 2, 2])}, 5)]
    df = leaderboard.aggregate(rows, meta, n_boot=200)
    assert isinstance(df, pd.DataFrame)
    assert df.loc[0, "l2"] == 2.0 and df.loc[0, "l2_n"] == 2  # failed rows left out of distances
    assert df.loc[1, "validity_ci"] == "wilson" and df.loc[1, "l2_ci"] == "none"  # 4/4 has an interval, 2,2,2,2 none
    assert bool(df.loc[0, "subset"]) is True
    md = leaderboard.to_markdown(df, meta, "T", ["note"])
    assert "validity ↑" in md and "l2 ↓" in md and "4/5 (subset)" in md and "valid counterfactuals only" in md
    paths = board.write(tmp_path, board.COUNTERFACTUALS, df, md, dict(metrics=[
        dict(name=m.name, higher_is_better=m.higher_is_better) for m in meta], entries=[]))
    assert [p.name for p in paths] == ["counterfactuals.csv", "counterfactuals.md", "counterfactuals.json"]
    assert board.tables_in(tmp_path) == [board.COUNTERFACTUALS] and board.table("counterfactual").stem == "counterfactuals"
    back = board.read_table(paths[0])
    assert back["method"].tolist() == ["a", "b"] and back["l2"].tolist() == df["l2"].tolist()
    assert board.directions([board.read_json(paths[2])]) == {"validity": True, "l2": False}


def test_a_metric_that_raises_becomes_nan_rows_not_a_crash(tmp_path, oracle, errors, mnist, caplog):
    """Quantus asserts on all-zero attributions; the run keeps going with NaN for those rows."""
    from types import SimpleNamespace

    import torch

    from bench.contract.metrics import AttrBatch, MetricContext
    from bench.scoring import _guarded
    from metrics import ATTR_METRICS

    store = Store(tmp_path / "s.sqlite")
    x, pred = errors.x[:3], errors.pred[:3]
    attr = torch.zeros_like(x)
    attr[0, 0, 10:14, 10:14] = 1.0  # row 0 has a real map, rows 1-2 are all zero
    store.add_records("k", [dict(test_index=i, success=True, seconds=0.0, explained=int(pred[i]),
                                 artifact=attr[i].numpy()) for i in range(3)])

    def make_batch(records):
        rows = [r["test_index"] for r in records]
        return AttrBatch(x[rows], torch.from_numpy(np.stack([r["artifact"] for r in records])), pred[rows],
                         torch.zeros(len(rows)))

    prep = SimpleNamespace(store=store, metric_ctx=MetricContext(oracle=oracle, data=mnist))
    sparseness = ATTR_METRICS.get("q_sparseness")
    zeros = _guarded(sparseness, make_batch(store.records("k", [1, 2])), prep, [1, 2], make_batch, "k", {})
    assert np.isnan(zeros).all()
    assert "metric q_sparseness failed on a batch" in caplog.text
    caplog.clear()
    real = _guarded(sparseness, make_batch(store.records("k", [0])), prep, [0], make_batch, "k", {})
    assert np.isfinite(real).all() and caplog.text == ""


def test_git_dirty_flag_ignores_published_tables(tmp_path):
    import subprocess

    from bench.provenance import git_state

    def git(*args):
        subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=tmp_path,
                       check=True, capture_output=True)

    (tmp_path / "leaderboards").mkdir()
    (tmp_path / "code.py").write_text("a = 1\n")
    (tmp_path / "leaderboards" / "t.csv").write_text("method\n")
    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "init")
    assert git_state(tmp_path)["dirty"] is False
    (tmp_path / "leaderboards" / "t.csv").write_text("method\ngradient\n")  # a run rewrote its table
    assert git_state(tmp_path)["dirty"] is False
    (tmp_path / "code.py").write_text("a = 2\n")  # the code changed
    state = git_state(tmp_path)
    assert state["dirty"] is True and len(state["commit"]) == 40
