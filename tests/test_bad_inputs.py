"""Bad inputs: each is one line on stderr and exit code 2, before any data is loaded, any model
trained or any file written (the README's troubleshooting table lists the same inputs).

Every case runs through the real CLI (`bench.cli.main`, what `python -m bench` calls) in one
child process per batch, from an empty folder, with HOME and --cache-dir pointing at empty
folders and tripwires on data loading, model loading/training and the run store: a tripwire
ends the child with code 99. A few cases also run as their own `python -m bench` process.
"""

from __future__ import annotations

import json
import os
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
# (arguments, what the one line must say). {tmp} is the case folder (see _files); run, check,
# train and config cases also get --cache-dir <an empty folder>.
CASES = [
    (["run", "--preset", "nope"], "unknown preset 'nope'"),
    (["run", "--preset", "{tmp}/broken.toml"], "is not valid TOML"),
    (["run", "--set", "trian.epochs=1"], "unknown key trian (did you mean 'train'?)"),
    (["run", "--set", "seed"], "--set expects key=value, got 'seed'"),
    (["run", "--set", "train.epochs=three"], "train.epochs: expected an integer, got 'three'"),
    (["run", "--set", "train.lr=-1"], "train.lr must be > 0, got -1.0"),
    (["run", "--set", "train.epochs=0"], "train.epochs must be >= 1, got 0"),
    (["run", "--set", "train.batch_size=0"], "train.batch_size must be >= 1, got 0"),
    (["run", "--limit", "0"], "limit must be >= 1, got 0"),
    (["run", "--limit", "-3"], "limit must be >= 1, got -3"),
    (["run", "--limit", "ten"], "argument --limit: invalid int value: 'ten'"),
    (["run", "--seed", "-1"], "seed must be >= 0, got -1"),
    (["run", "--set", "dataset=\"mnsit\""], "unknown dataset 'mnsit'"),
    (["run", "--set", "model=\"cnnn\""], "unknown model 'cnnn'"),
    (["run", "--set", "model_params.width=3"], "unknown key model_params.width"),
    (["run", "--set", "counterfactuals.solvers=[\"gradeint\"]"], "unknown solver 'gradeint'; did you mean 'gradient'"),
    (["run", "--set", "attributions.methods=[\"saliencyy\"]"], "unknown attribution 'saliencyy'; did you mean 'saliency'"),
    (["run", "--set", "counterfactuals.params.gradient.lrr=0.1"],
     "unknown key counterfactuals.params.gradient.lrr (did you mean 'lr'?)"),
    (["run", "--set", "counterfactuals.params.gradient.lr=\"fast\""],
     "counterfactuals.params.gradient.lr: expected a number, got 'fast'"),
    (["run", "--set", "counterfactuals.params.gradient.lr=-0.01"],
     "counterfactuals.params.gradient.lr must be > 0, got -0.01"),
    (["run", "--set", "counterfactuals.params.growing_spheres.max_queries=0"],
     "counterfactuals.params.growing_spheres.max_queries must be >= 1, got 0"),
    (["run", "--set", "attributions.params.smoothgrad.n_samples=0"],
     "attributions.params.smoothgrad.n_samples must be >= 1, got 0"),
    (["run", "--set", "attributions.params.ig.steps=10"], "unknown key attributions.params.ig.steps"),
    (["run", "--set", "attributions.targets=[\"wrong\"]"], "attributions.targets must be a list of predicted"),
    (["run", "--set", "counterfactuals.metrics=[\"l3\"]"], "unknown cf_metric 'l3'"),
    (["run", "--set", "attributions.metric_params.deletion_auc.step=0"],
     "attributions.metric_params.deletion_auc.step must be >= 1, got 0"),
    (["run", "--set", "counterfactuals.subset.gradient=0"], "counterfactuals.subset.gradient must be an integer >= 1"),
    (["run", "--set", "attributions.subset_by_need.explain=3"], "unknown key attributions.subset_by_need.explain"),
    (["run", "--set", "plugins=[\"{tmp}/missing_plugin.py\"]"], "plugins: no such file"),
    (["run", "--device", "gpu"], "device must be auto | cpu | cuda[:N], got 'gpu'"),
    (["run", "--device", "cuda:9"], "device 'cuda:9'"),
    (["run", "--data-dir", "{tmp}/no_such_folder"], "is not a folder (an IDX directory, or 'download')"),
    (["run", "--store", "{tmp}/notes.txt"], "is not a usable bench run store"),
    (["run", "--store", "{tmp}/other.sqlite"], "is an SQLite database but not a bench run store"),
    (["run", "--publish", "--limit", "3"], "--publish refuses --limit runs"),
    (["run", "-v", "-q"], "argument -q/--quiet: not allowed with argument -v/--verbose"),
    (["train", "--set", "train.lr=0"], "train.lr must be > 0, got 0.0"),
    (["config", "--set", "counterfactuals.batch_size=0"], "counterfactuals.batch_size must be >= 1, got 0"),
    (["check", "--baseline", "{tmp}/no_baseline"], "check --baseline {tmp}/no_baseline: no such folder"),
    (["check", "--board", "{tmp}/no_board"], "check --board {tmp}/no_board: no such folder"),
    (["check", "--board", "{tmp}/empty_folder"], "not a board (no counterfactuals.json or attributions.json)"),
    (["check", "--board", f"{REPO}/leaderboards/mnist/cnn", "--limit", "3"], "drop --limit"),
    (["list", "solverz"], "unknown list 'solverz'"),
    (["run", "--executor", "ray"], "--executor ray runs studies: preset 'default' has no [study] table"),
    (["run", "--address", "10.0.0.1:6379"], "--address points at a Ray cluster: it needs --executor ray"),
    (["run", "--preset", "zoo", "--set", "study.only=[\"vgg-seed0\"]"], "study.only: 'vgg-seed0' names no cell"),
    (["run", "--preset", "zoo", "--set", "study.seeds=[]"], "study.seeds must be a non-empty list of seeds"),
    (["meta", "{tmp}/empty_folder"], "not a board (no counterfactuals_instances.csv"),
    # issue 27: non-finite and absurd parameters, refused before any data is loaded
    (["run", "--set", "train.lr=inf"], "train.lr must be a finite number, got inf (allowed (0, 10]"),
    (["run", "--set", "train.lr=nan"], "train.lr must be a finite number, got nan"),
    (["run", "--set", "counterfactuals.params.gradient.margin=nan"],
     "counterfactuals.params.gradient.margin must be a finite number, got nan"),
    (["run", "--set", "counterfactuals.params.gradient.lambda_l2=inf"],
     "counterfactuals.params.gradient.lambda_l2 must be a finite number, got inf"),
    (["run", "--set", "counterfactuals.params.gradient.lr=nan"], "counterfactuals.params.gradient.lr must be a finite"),
    (["run", "--set", "counterfactuals.params.growing_spheres.first_radius=nan"],
     "counterfactuals.params.growing_spheres.first_radius must be a finite number"),
    (["run", "--set", "counterfactuals.params.growing_spheres.step=nan"],
     "counterfactuals.params.growing_spheres.step must be a finite number"),
    (["run", "--set", "model_params.std=0.0"], "model_params.std must be > 0, got 0.0 (allowed (0, 100]"),
    (["run", "--set", "counterfactuals.params.gradient.max_steps=1000000000000"],
     "counterfactuals.params.gradient.max_steps must be <= 100000, got 1000000000000"),
    (["run", "--set", "n_bootstrap=1000000000"], "n_bootstrap must be <= 100000, got 1000000000"),
    (["run", "--set", "attributions.metric_params.q_max_sensitivity.lower_bound=inf"],
     "attributions.metric_params.q_max_sensitivity.lower_bound must be a finite number"),
    (["config", "--set", "train.lr=inf"], "train.lr must be a finite number, got inf"),
    (["run", "--seed", "18446744073709551616"], "seed must be < 4294967296, got 18446744073709551616"),
    (["config", "--seed", "18446744073709551616"], "seed must be < 4294967296"),
    (["meta", f"{REPO}/leaderboards/mnist/cnn", "--n-boot", "100000000"], "--n-boot must be <= 100000"),
    # files and folders
    (["run", "--data-dir", "{tmp}/downloads_mnist"], "data_dir '{tmp}/downloads_mnist' is not a folder"),
    (["run", "--out", "{tmp}/notes.txt"], "notes.txt is a file, not a folder; choose another --out"),
    (["run", "--store", "{tmp}/app.sqlite"], "app.sqlite is an SQLite database but not a bench run store"),
    (["run", "--store", "{tmp}/old_schema.sqlite"], "not a bench run store of this schema"),
    (["run", "--preset", "{tmp}/cycle_a.toml"], "extends itself through a cycle"),
    (["run", "--preset", "{tmp}/latin1.toml"], "is not UTF-8 text (byte 0xe9"),
    (["run", "--set", "counterfactuals.solvers=[\"gradient\", \"gradient\"]"],
     "counterfactuals.solvers must be free of repeats ('gradient' appears twice)"),
    (["run", "--set", "counterfactuals.solvers=[]", "--set", "attributions.methods=[]"],
     "counterfactuals.solvers and attributions.methods are both empty: nothing to run"),
    (["run", "--set", "plugins=[\"{tmp}/exits.py\"]"], "called sys.exit(3) while being imported"),
    # boards someone sent: checked against their provenance, never executed
    (["check", "--board", "{tmp}/plugin_board"], "the board was made with plugin(s)"),
    (["check", "--board", "{tmp}/truncated_board"], "counterfactuals.csv has 4 rows but its provenance"),
    (["check", "--board", "{tmp}/edited_errors"], "errors.csv does not match the manifest sha256"),
    (["report", "{tmp}/truncated_board"], "counterfactuals.csv has 4 rows but its provenance"),
    (["meta", "{tmp}/edited_errors"], "errors.csv does not match the manifest sha256"),
    (["check", "--plugin", "{tmp}/exits.py"], "--plugin names a plugin a board needs: it goes with --board"),
    # issue 23: ground-truth rows and metrics
    (["run", "--set", "rows=\"wrong\""], "rows must be errors | correct | common, got 'wrong'"),
    (["run", "--set", "n_correct=5"], "n_correct must be >= 10, got 5 (allowed [10, 10000]"),
    (["run", "--set", "attributions.metrics=[\"loc_pointing_game\"]"],
     "loc_pointing_game needs a ground-truth mask and dataset 'mnist' has none"),    # issue 25: the common image set, training a study in sittings
    (["run", "--set", "dataset=\"fashion-mnist\"", "--set", "rows=common"],
     "rows='common': dataset 'fashion-mnist' has no common image set"),
    (["train", "--pin"], "--pin pins a study's checkpoints; a plain run pins its model with `bench run --publish`"),
]

_DRIVER = r"""
import io, json, os, sys
from contextlib import redirect_stderr, redirect_stdout

def trip(what):
    def wire(*a, **k):
        sys.__stderr__.write(f"TRIPWIRE: {what}\n")
        os._exit(99)
    return wire

import bench.data, bench.store, bench.checkpoints
bench.data.load_dataset = trip("data loaded")
bench.store.Store.__init__ = trip("run store opened")
bench.checkpoints.load_or_build = trip("model loaded or trained")
from bench.cli import main

out = []
for argv in json.load(sys.stdin):
    err, std = io.StringIO(), io.StringIO()
    with redirect_stderr(err), redirect_stdout(std):
        try:
            code = main(argv)
        except SystemExit as e:  # argparse: what `python -m bench` would exit with
            code = e.code
    out.append(dict(code=code, stderr=err.getvalue(), stdout=std.getvalue()))
print(json.dumps(out))
"""


def _files(tmp: Path) -> None:
    (tmp / "empty_folder").mkdir()
    (tmp / "broken.toml").write_text("[train\nepochs = 3\n")
    (tmp / "notes.txt").write_text("not a database\n" * 10)
    with sqlite3.connect(tmp / "other.sqlite") as con:
        con.execute("CREATE TABLE customers (id INTEGER)")
    with sqlite3.connect(tmp / "app.sqlite") as con:  # an application's table that shares a name with bench's
        con.execute("CREATE TABLE scores (user TEXT, points INTEGER)")
    with sqlite3.connect(tmp / "old_schema.sqlite") as con:  # bench's table names, an older layout
        con.execute("CREATE TABLE records (entry_key TEXT, test_index INTEGER, artifact BLOB)")
    (tmp / "cycle_a.toml").write_text('extends = "cycle_b.toml"\n')
    (tmp / "cycle_b.toml").write_text('extends = "cycle_a.toml"\nseed = 1\n')
    (tmp / "latin1.toml").write_bytes("# r\u00e9glages\nseed = 1\n".encode("latin-1"))
    (tmp / "exits.py").write_text("import sys\nsys.exit(3)\n")
    boards(tmp)


def boards(tmp: Path) -> None:
    """Copies of the committed ci board: one whose provenance names a plugin (that would leave a file if
    imported), one cut to 2/3 of its table, one with a changed label in errors.csv."""
    import shutil

    for name in ("plugin_board", "truncated_board", "edited_errors"):
        shutil.copytree(REPO / "leaderboards" / "ci", tmp / name)
    (tmp / "plugin_board" / "evil.py").write_text(
        "from pathlib import Path\nPath(__file__).with_name('IMPORTED').write_text('code ran')\n")
    prov = json.loads((tmp / "plugin_board" / "counterfactuals.json").read_text())
    prov["config"]["plugins"] = ["evil.py", str(tmp / "plugin_board" / "evil.py")]
    prov["config"]["counterfactuals"]["solvers"].append("evil_solver")
    (tmp / "plugin_board" / "counterfactuals.json").write_text(json.dumps(prov))
    lines = (tmp / "truncated_board" / "counterfactuals.csv").read_text().splitlines(keepends=True)
    (tmp / "truncated_board" / "counterfactuals.csv").write_text("".join(lines[:len(lines) * 2 // 3 + 1]))
    rows = (tmp / "edited_errors" / "errors.csv").read_text().splitlines(keepends=True)
    pos, index, true, pred = rows[1].strip().split(",")
    rows[1] = f"{pos},{index},{(int(true) + 1) % 10},{pred}\n"
    (tmp / "edited_errors" / "errors.csv").write_text("".join(rows))


def _argv(args: list[str], tmp: Path) -> list[str]:
    argv = [a.replace("{tmp}", str(tmp)) for a in args]
    return argv + (["--cache-dir", str(tmp / "cache")] if argv[0] in ("run", "check", "train", "config") else [])


def _env(tmp: Path) -> dict:
    return {**os.environ, "HOME": str(tmp / "home"), "MPLCONFIGDIR": str(tmp / "mpl"), "BENCH_CACHE": str(tmp / "cache")}


def _snapshot(root: Path) -> dict:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad")
    for d in ("cache", "home", "work", "mpl"):
        (tmp / d).mkdir()
    _files(tmp)
    before = _snapshot(REPO / "leaderboards")
    proc = subprocess.run([sys.executable, "-c", _DRIVER], input=json.dumps([_argv(a, tmp) for a, _ in CASES]),
                          capture_output=True, text=True, cwd=tmp / "work", env=_env(tmp), timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]  # 99: a tripwire went off (data, model or store touched)
    results = json.loads(proc.stdout)
    return dict(tmp=tmp, results=results, leaderboards_changed=_snapshot(REPO / "leaderboards") != before)


@pytest.mark.parametrize("i", range(len(CASES)), ids=[" ".join(a)[:60] for a, _ in CASES])
def test_bad_input_is_one_line_and_exit_2(outcomes, i):
    args, message = CASES[i]
    r = outcomes["results"][i]
    lines = r["stderr"].splitlines()
    assert r["code"] == 2, r
    assert len(lines) == 1 and lines[0].startswith("bench: error: "), r["stderr"]
    assert message.replace("{tmp}", str(outcomes["tmp"])) in lines[0]
    assert r["stdout"] == ""


def test_bad_inputs_write_nothing(outcomes):
    tmp = outcomes["tmp"]
    for d in ("cache", "home", "work"):  # no cache, no store, no checkpoint, no runs/ folder
        assert list((tmp / d).iterdir()) == [], d
    assert not outcomes["leaderboards_changed"]
    assert not (tmp / "plugin_board" / "IMPORTED").exists()  # the board's plugin never ran
    for name in ("app.sqlite", "old_schema.sqlite", "other.sqlite"):  # foreign databases: no WAL, no journal
        assert not list(tmp.glob(f"{name}-*")), name


def shown(args: list[str]) -> str:
    """A case as the README's troubleshooting table writes it (a command one can paste)."""
    return "bench " + shlex.join([a.replace("{tmp}/", "").replace(f"{REPO}/", "") for a in args])


def test_there_are_at_least_25_and_the_readme_lists_each():
    assert len(CASES) >= 25
    table = README.split("### Troubleshooting")[1].split("\n## ")[0]
    missing = [shown(args) for args, _ in CASES if f"`{shown(args)}`" not in table]
    assert not missing


OWN = ["train.lr=-1", "-1", "attributions.methods=[\"saliencyy\"]", "{tmp}/no_such_folder", "{tmp}/no_baseline",
       "ten"]


@pytest.mark.parametrize("i", [next(i for i, (a, _) in enumerate(CASES) if a[-1] == last) for last in OWN])
def test_own_process_exit_code(tmp_path, i):
    """The same, each as its own `python -m bench` process (the exit code a shell sees)."""
    for d in ("cache", "home", "work", "mpl"):
        (tmp_path / d).mkdir()
    args, message = CASES[i]
    proc = subprocess.run([sys.executable, "-m", "bench", *_argv(args, tmp_path)], capture_output=True, text=True,
                          cwd=tmp_path / "work", env=_env(tmp_path), timeout=300)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and message.replace("{tmp}", str(tmp_path)) in proc.stderr
    assert [p for d in ("cache", "home", "work") for p in (tmp_path / d).iterdir()] == []


def test_missing_extra_is_refused_and_listed_unavailable(monkeypatch, tmp_path, capsys):
    import bench.validate

    monkeypatch.setattr(bench.validate, "extra_installed", lambda extra: extra != "alibi")
    assert main(["run", "--set", "counterfactuals.solvers=[\"gradient\", \"alibi_wachter\"]",
                 "--cache-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'alibi_wachter' needs the optional extra [alibi]" in err
    assert 'pip install -e ".[alibi]"' in err and list(tmp_path.iterdir()) == []
    assert main(["config", "--preset", "tiny", "--cache-dir", str(tmp_path)]) == 0  # no alibi solver asked for
    from bench.config import make_config

    bench.validate.validate(make_config("default", cache_dir=str(tmp_path)), extras=False)  # `bench train`
    with pytest.raises(ValueError, match="needs the optional extra"):
        bench.validate.validate(make_config("default", cache_dir=str(tmp_path)))
    capsys.readouterr()
    assert main(["list", "solvers"]) == 0
    listed = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert "UNAVAILABLE" in listed["alibi_proto"] and "[alibi]" in listed["alibi_wachter"]
    assert "UNAVAILABLE" not in listed["gradient"]
