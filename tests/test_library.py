"""The Python API and the README's examples, run exactly as written."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import bench
from bench.config import make_config

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _block(heading: str, lang: str, nth: int = 0) -> str:
    """The nth fenced `lang` block under README heading `heading`."""
    section = README.split(heading, 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{lang}\n(.*?)```", section, re.S)[nth]


def _env(home: Path) -> dict:
    """A fresh HOME (so ~/.cache/bench starts empty: the model comes from the reference weights)."""
    env = dict(os.environ, HOME=str(home), PYTHONPATH=str(ROOT))
    env.pop("BENCH_CACHE", None)
    return env


@pytest.mark.slow
def test_readme_python_example_runs_as_written(tmp_path):
    (tmp_path / "leaderboards").symlink_to(ROOT / "leaderboards")
    code = _block("### From Python", "python")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env(tmp_path), capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "gradient" in done.stdout and "deletion_auc" in done.stdout
    scores = pd.read_csv(tmp_path / "tiny_scores.csv")
    assert set(scores.columns) == {"task", "method", "mode", "test_index", "metric", "value"}
    assert set(scores["method"]) == {"gradient", "saliency", "ig", "random"}
    assert (scores.query("metric == 'validity'")["value"] == 1).all()
    assert list((tmp_path / "runs" / "mnist" / "cnn").iterdir())  # a run folder, never leaderboards/


@pytest.mark.slow
def test_readme_extending_example_runs_as_written(tmp_path):
    (tmp_path / "nearest_blend.py").write_text(_block("## Extending", "python"))
    command = shlex.split(_block("## Extending", "bash").replace("\\\n", " "))
    assert command[:4] == ["python", "-m", "bench", "run"]
    done = subprocess.run([sys.executable, *command[1:], "--quiet"], cwd=tmp_path, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    r = bench.load(next((tmp_path / "runs" / "mnist" / "cnn").iterdir()))
    row = r.counterfactuals.set_index("method").loc["nearest_blend"]
    assert row["n"] == 6 and row["validity"] == 1.0  # the nearest true-class image itself is valid
    assert row["queries"] >= 1  # counted by the harness's oracle, not self-reported
    assert 0 < row["l2"] < r.counterfactuals.set_index("method").loc["gradient", "l2"] * 20


def test_load_reads_a_published_board_back():
    folder = ROOT / "leaderboards" / "mnist" / "cnn"
    r = bench.load(folder)
    csv = pd.read_csv(folder / "counterfactuals.csv")
    assert list(r.counterfactuals["method"]) == list(csv["method"])
    assert r.counterfactuals["validity"].tolist() == pytest.approx(csv["validity"].tolist())
    assert set(r.instances["task"]) == {"counterfactual", "attribution"}
    # one long row per non-empty score of the per-instance export, and the mean agrees with the table
    inst = pd.read_csv(folder / "counterfactuals_instances.csv")
    l2 = r.instances.query("task == 'counterfactual' and method == 'gradient' and metric == 'l2'")["value"]
    assert len(l2) == inst.query("method == 'gradient'")["l2"].notna().sum()
    assert l2.mean() == pytest.approx(float(csv.set_index("method").loc["gradient", "l2"]), rel=1e-5)
    assert r.provenance["counterfactuals"]["errors"]["n"] == len(pd.read_csv(folder / "errors.csv"))
    assert len(r.records.query("method == 'gradient'")) == csv.set_index("method").loc["gradient", "n"]


def test_results_export_round_trips(tmp_path):
    r = bench.load(ROOT / "leaderboards" / "mnist" / "cnn")
    back = pd.read_csv(r.to_csv(tmp_path / "scores.csv"), keep_default_na=False, na_values=[""])
    back["mode"] = back["mode"].fillna("")
    assert len(back) == len(r.instances) and back["value"].sum() == pytest.approx(r.instances["value"].sum())
    back = pd.read_parquet(r.to_parquet(tmp_path / "scores.parquet"))
    pd.testing.assert_frame_equal(back, r.instances.reset_index(drop=True))


def test_load_refuses_what_is_not_results(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a board/run folder"):
        bench.load(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="no counterfactuals.csv"):
        bench.load(tmp_path)


def test_reproduce_command_is_built_from_the_config():
    from bench.provenance import reproduce_command

    cfg = make_config("default", ["seed=3", 'attributions.methods=["ig", "saliency"]',
                                  "counterfactuals.params.growing_spheres.n_in_layer=100"], limit=5,
                      cache_dir="/somewhere/local")
    command = shlex.split(reproduce_command(cfg))
    assert command[:6] == ["python", "-m", "bench", "run", "--preset", "default"]
    sets = [command[i + 1] for i, a in enumerate(command) if a == "--set"]
    assert not any(s.startswith("cache_dir") for s in sets)  # this machine's paths are not the experiment
    again = make_config("default", sets, cache_dir="/somewhere/local")
    assert again == cfg
    assert reproduce_command(make_config("ci")) == "python -m bench run --preset ci"


def test_every_stochastic_method_draws_from_the_run_seed():
    import torch

    from bench.context import method_seeds
    from bench.contract import ATTRIBUTIONS, SOLVERS

    seeded = []
    for reg in (SOLVERS, ATTRIBUTIONS):
        for name in reg.names():
            cls = reg.get(name)
            if "seed" in cls.Params.__dataclass_fields__:
                seeded.append(name)
                assert cls.param_dict(**method_seeds(cls, {}, 5))["seed"] == 5
                assert cls.param_dict(**method_seeds(cls, {"seed": 7}, 5))["seed"] == 7  # explicit wins
    assert {"smoothgrad", "lime", "kernel_shap", "ig_uniform", "deepshap", "growing_spheres", "random"} <= set(seeded)
    rnd = ATTRIBUTIONS.get("random")
    x, t = torch.rand(2, 1, 28, 28), torch.tensor([1, 2])

    class _NoModel:  # the random control never touches the model
        white_box, device = False, torch.device("cpu")

    maps = [rnd(_NoModel(), **method_seeds(rnd, {}, s))(x, t).attr for s in (0, 1)]
    assert not torch.equal(maps[0], maps[1])



@pytest.mark.slow
def test_a_limited_run_inside_the_checkout_leaves_git_status_clean(tmp_path):
    status = lambda: subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT,  # noqa: E731
                                    capture_output=True, text=True).stdout
    if subprocess.run(["git", "rev-parse"], cwd=ROOT, capture_output=True).returncode != 0:
        pytest.skip("not a git checkout")
    before = status()
    done = subprocess.run([sys.executable, "-m", "bench", "run", "--preset", "tiny", "--limit", "3", "--quiet"],
                          cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "runs/mnist/cnn/" in done.stdout  # it wrote its run folder (git-ignored), not leaderboards/
    assert status() == before
