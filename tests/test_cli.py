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
    assert "del_morf_zeros" in headline and "saliency/predicted" in headline
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
    listed = run_cli("runs", "--store", str(store)).stdout.splitlines()  # both runs were recorded
    assert [line.split()[-1] for line in listed] == ["done", "done"] and f"{folder}  done" in listed[1]
    assert all("mnist/cnn" in line and " 6 errors" in line for line in listed)


def test_config_prints_toml_that_reads_back_as_the_same_config(tmp_path, capsys):
    from bench.config import make_config

    sets = ["--set", "attributions.metric_params.deletion_auc.step=14", "--set", 'counterfactuals.subset={"*" = 7, gradient = 100}',
            "--set", 'out="a \\"quoted\\" folder"', "--seed", "5", "--limit", "9"]
    assert main(["config", "--preset", "fashion_cnn", *sets]) == 0
    text = capsys.readouterr().out
    assert "seed = 5" in text and '"*" = 7' in text
    (tmp_path / "resolved.toml").write_text(text)
    expected = make_config("fashion_cnn", [s for s in sets[1::2] if "=" in s], seed=5, limit=9)
    assert make_config(str(tmp_path / "resolved.toml")) == expected
    assert main(["config", "--preset", str(tmp_path / "resolved.toml")]) == 0
    assert capsys.readouterr().out == text  # a fixed point
    for preset in ("default", "tiny", "ci", "full", "mnist_resnet_cbam"):
        main(["config", "--preset", preset])
        (tmp_path / f"{preset}.toml").write_text(capsys.readouterr().out)
        assert make_config(str(tmp_path / f"{preset}.toml")) == make_config(preset), preset


def test_seed_flag_is_the_run_seed(capsys):
    main(["config", "--preset", "tiny", "--seed", "3"])
    flag = capsys.readouterr().out
    main(["config", "--preset", "tiny", "--set", "seed=3"])
    assert flag == capsys.readouterr().out and "\nseed = 3\n" in flag


def test_version_and_verbosity(monkeypatch, capsys):
    import logging

    import bench
    import bench.cli
    from bench import progress

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"bench {bench.__version__}"
    seen = []
    monkeypatch.setattr(bench.cli, "_dispatch", lambda args: seen.append(
        (logging.getLogger("bench").level, progress.enabled())) or 0)
    for argv in (["list"], ["-v", "list"], ["list", "--verbose"], ["-q", "list"], ["list", "--quiet"]):
        main(argv)
    assert seen == [(logging.INFO, True), (logging.DEBUG, True), (logging.DEBUG, True),
                    (logging.WARNING, False), (logging.WARNING, False)]


def test_runs_lists_every_store_without_torch(tmp_path):
    import sqlite3

    old = tmp_path / "runs" / "mnist" / "resnet_cbam.sqlite"  # a store made before runs were recorded
    old.parent.mkdir(parents=True)
    with sqlite3.connect(old) as con:
        con.execute("CREATE TABLE entries (entry_key TEXT PRIMARY KEY, task TEXT, method TEXT, mode TEXT, "
                    "version TEXT, params TEXT, context TEXT, created REAL)")
    from bench.store import read_runs

    assert read_runs(old) == [] and Store(old).runs() == []  # opens, and gains the table
    store = Store(tmp_path / "runs" / "mnist" / "cnn.sqlite")
    store.add_run(12.3, "runs/mnist/cnn/A", {"dataset": "mnist", "model": "cnn"}, 91, "done")
    store.add_run(4.0, "runs/mnist/cnn/B", {"dataset": "mnist", "model": "cnn"}, 3, "KeyboardInterrupt")
    Store(old).add_run(1.0, "runs/mnist/resnet_cbam/C", {"dataset": "mnist", "model": "resnet_cbam"}, 86, "done")
    code = ("import sys; from bench.cli import main; main(['runs', '--cache-dir', sys.argv[1]]); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60)
    *lines, torch_loaded = out.stdout.splitlines()
    assert torch_loaded == "False" and len(lines) == 3, out.stdout + out.stderr
    assert [line.split()[-1] for line in lines] == ["done", "KeyboardInterrupt", "done"]
    assert "mnist/cnn" in lines[0] and "91 errors" in lines[0] and "12 s" in lines[0] and "cnn/A" in lines[0]
    assert "mnist/resnet_cbam" in lines[2] and "86 errors" in lines[2]


def test_ci_and_tox_install_what_the_readme_test_command_installs():
    import configparser
    import re
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme, ci = (root / "README.md").read_text(), (root / ".ci" / "run").read_text()
    [run_spec] = re.findall(r'pip install -e "([^"]+)" && python -m bench run', readme)
    [test_spec] = re.findall(r'pip install -e "([^"]+)" && python -m pytest', readme)
    assert re.findall(r'^pip install -q -e "([^"]+)"$', ci, re.M) == [test_spec] == ['.[alibi,ray,test,art]']
    assert run_spec == ".[alibi,art]"
    tox = configparser.ConfigParser()
    tox.read(root / "tox.ini")
    assert [e.strip() for e in tox["testenv"]["extras"].split(",")] == ["alibi", "ray", "test", "art"]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert not any(d.startswith("alibi") for d in project["dependencies"])
    assert project["optional-dependencies"]["alibi"] == ["alibi[tensorflow]==0.9.6"]
    assert not any(d.startswith("ray") for d in project["dependencies"]) and project["optional-dependencies"]["ray"]
    # requires-python claims exactly the versions tox has an environment for
    assert project["requires-python"] == ">=3.11,<3.12" and tox["tox"]["envlist"].split(",") == ["py311"]
