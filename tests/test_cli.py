"""The command line end to end on the real MNIST and model, and its handling of bad input."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from bench.cli import main
from bench.store import Store

PY = [sys.executable, "-m", "bench"]


def run_cli(*args, env=None):
    return subprocess.run(PY + list(args), capture_output=True, text=True, timeout=900,
                          env={**os.environ, **(env or {})})


def test_help_and_list_import_no_torch_or_tensorflow():
    code = ("import sys; from bench.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "main(['list']); print('torch' in sys.modules, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().endswith("False False")
    assert "gradient" in out.stdout and "mnist" in out.stdout


@pytest.mark.parametrize("args, message", [
    (["run", "--set", "trian.epochs=1"], "unknown key trian"),
    (["run", "--preset", "nope"], "unknown preset 'nope'"),
    (["run", "--set", "counterfactuals.solvers=[\"gradeint\"]", "--limit", "2"], "did you mean 'gradient'"),
    (["list", "solverz"], "unknown list 'solverz'"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bench: error:") and message in err and "\n" not in err


def test_cuda_without_gpu_is_a_clear_error(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the error path does not apply")
    assert main(["run", "--device", "cuda", "--limit", "1"]) == 2
    assert "no CUDA device" in capsys.readouterr().err


@pytest.mark.slow
def test_tiny_run_writes_leaderboards_and_resumes(tmp_path, cache_dir):
    out, store = tmp_path / "lb", tmp_path / "store.sqlite"
    args = ["run", "--preset", "tiny", "--out", str(out), "--cache-dir", cache_dir, "--quiet",
            "--set", f"store=\"{store}\"", "--device", "cpu"]
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr[-2000:]
    [folder] = list((out / "mnist" / "cnn").iterdir())  # runs/<dataset>/<model>/<UTC time>/
    assert first.stdout.rstrip().endswith(str(folder))
    headline = first.stdout.split("attributions:")[1]  # the headline tables are printed
    assert "deletion_auc" in headline and "saliency/predicted" in headline
    cf = pd.read_csv(folder / "counterfactuals.csv")
    assert list(cf["method"]) == ["gradient", "growing_spheres"]
    assert (cf["n"] == 6).all() and cf["not_for_publication"].all()  # --limit via the preset
    assert cf.loc[cf.method == "gradient", "validity"].item() == 1.0
    assert (cf.loc[cf.method == "gradient", "grad_queries"] > 0).all()
    assert cf.loc[cf.method == "growing_spheres", "grad_queries"].item() == 0
    attr = pd.read_csv(folder / "attributions.csv")
    assert set(attr["method"]) == {"saliency", "ig", "random"}
    assert attr["deletion_auc"].between(0, 1).all()
    prov = json.loads((folder / "counterfactuals.json").read_text())
    assert prov["errors"]["not_for_publication"] and len(prov["model"]["weights_sha256"]) == 64
    assert {"torch", "captum", "quantus"} <= set(prov["libraries"])
    cost = prov["model_cost"]  # black-box solvers' time over the model's own forward cost
    assert cost["throughput"]["rows_per_s"] > 100 and set(cost["seconds_over_forward_cost"]) == {"growing_spheres"}
    assert cost["seconds_over_forward_cost"]["growing_spheres"] > 0
    md = (folder / "counterfactuals.md").read_text()
    assert "NOT FOR PUBLICATION" in md and "counterfactuals_overlays.png" in md
    assert "Model cost: the raw forward pass ran at" in md and "growing_spheres" in md.split("Model cost:")[1]
    for png in ("counterfactuals_overlays.png", "counterfactuals_budget.png", "attributions_heatmaps.png"):
        assert (folder / png).stat().st_size > 10_000
    assert "\n6 errors," in first.stdout
    manifest = pd.read_csv(folder / "errors.csv")
    assert len(manifest) == 6 and (manifest.true != manifest.pred).all()

    def timings():  # wall times differ on every real solve, so equal timings = nothing re-solved
        return {k: [r["seconds"] for r in Store(store).records(k)] for k in [e["entry_key"] for e in prov["entries"]]}

    before = timings()
    second = run_cli(*args)  # same config: everything is found in the store, nothing recomputed
    assert second.returncode == 0
    [folder] = [f for f in (out / "mnist" / "cnn").iterdir() if f != folder]  # a run never reuses a folder
    again = json.loads((folder / "counterfactuals.json").read_text())
    assert [e["entry_key"] for e in again["entries"]] == [e["entry_key"] for e in prov["entries"]]
    assert timings() == before
    resumed = again["model_cost"]  # seconds now come from the first run: no ratio mixes two runs
    assert resumed["seconds_over_forward_cost"] == {} and resumed["timed_in_earlier_run"] == ["growing_spheres"]
    assert "timed in an earlier run" in (folder / "counterfactuals.md").read_text()
    assert pd.read_csv(folder / "counterfactuals.csv")["l2"].tolist() == cf["l2"].tolist()
