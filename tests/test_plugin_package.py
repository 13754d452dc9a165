"""Plugins from outside bench. An installed package, end to end: pip installs it (offline, into a folder
of its own, never the venv), its entry point puts its solver in `bench list` without importing it, and
a real tiny run uses the solver by name and writes its row with a real validity. The README's plugin
examples for the other kinds (a captum attribution method, a metric, a model) work as written."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = """\
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "bench-demo-plugin"
version = "0.1"

[project.entry-points."bench.solvers"]
demo_blend = "bench_demo_plugin.blend:DemoBlend"

[tool.setuptools]
packages = ["bench_demo_plugin"]
"""
SOLVER = '''\
"""A plugin solver in one file with one import of bench."""

import torch

from bench.contract import CFResult, CounterfactualSolver, register_solver


@register_solver("demo_blend")
class DemoBlend(CounterfactualSolver):
    """Blend x toward its target class's mean training image until the model agrees."""

    white_box = False

    def fit(self, x_train, y_train):
        self.means = torch.stack([x_train[y_train == c].mean(0) for c in range(int(y_train.max()) + 1)])
        return self

    def __call__(self, x, target):
        goal = self.means.to(x.device)[target]
        x_cf, success = goal.clone(), torch.zeros(len(x), dtype=torch.bool, device=x.device)
        for a in torch.linspace(0.1, 1, 10).tolist():
            todo = (~success).nonzero()[:, 0]
            if len(todo) == 0:
                break
            cand = (1 - a) * x[todo] + a * goal[todo]
            hit = self.oracle.predict(cand, owner=todo) == target[todo]
            x_cf[todo[hit]], success[todo[hit]] = cand[hit], True
        return CFResult(x_cf=x_cf, success=success)
'''


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The plugin package, built and installed with pip into <tmp>/site (offline, no build isolation)."""
    tmp = tmp_path_factory.mktemp("plugin")
    pkg = tmp / "src"
    (pkg / "bench_demo_plugin").mkdir(parents=True)
    (pkg / "pyproject.toml").write_text(PYPROJECT)
    (pkg / "bench_demo_plugin" / "__init__.py").write_text("")
    (pkg / "bench_demo_plugin" / "blend.py").write_text(SOLVER)
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                          "--quiet", "--target", str(tmp / "site"), str(pkg)], capture_output=True, text=True, timeout=120)
    assert pip.returncode == 0, pip.stdout[-1500:] + pip.stderr[-1500:]
    assert (tmp / "site" / "bench_demo_plugin" / "blend.py").is_file()
    return tmp / "site"


def _bench(site: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, env=env)


def test_the_entry_point_lists_the_plugin_without_importing_it(site):
    out = _bench(site, "list", "solvers")
    assert out.returncode == 0, out.stderr[-1500:]
    [line] = [row for row in out.stdout.splitlines() if row.split()[:1] == ["demo_blend"]]
    assert "(plugin bench_demo_plugin.blend:DemoBlend)" in line
    assert "gradient" in out.stdout  # the built-ins are still there


@pytest.mark.slow
def test_a_tiny_run_uses_the_installed_solver_by_name(site, tmp_path, cache_dir):
    out = _bench(site, "run", "--preset", "tiny", "--limit", "3", "--device", "cpu", "--quiet",
                 "--cache-dir", cache_dir, "--out", str(tmp_path / "out"), "--store", str(tmp_path / "store.sqlite"),
                 "--set", 'counterfactuals.solvers=["demo_blend", "gradient"]', "--set", "attributions.methods=[]")
    assert out.returncode == 0, out.stderr[-2000:]
    [csv] = list((tmp_path / "out").rglob("counterfactuals.csv"))
    board = pd.read_csv(csv).set_index("method")
    assert list(board.index) == ["demo_blend", "gradient"]
    validity = board.loc["demo_blend", "validity"]
    assert not math.isnan(validity) and 0 < validity <= 1 and board.loc["demo_blend", "n"] == 3  # it flips errors
    assert board.loc["demo_blend", "grad_queries"] == 0 and board.loc["demo_blend", "queries"] > 0


EXAMPLES = """
import json, sys, torch
from bench.plugins import load_plugins
load_plugins(sys.argv[1:])
from bench.contract import ATTRIBUTIONS, CF_METRICS, MODELS, Oracle
from bench.contract.metrics import CFBatch
from bench.validate import config_params

model = MODELS.get("tiny_cnn")(n_classes=10).eval()
oracle = Oracle(model, "cpu")
x, target, contrast = torch.rand(4, 1, 28, 28), torch.arange(4), torch.arange(4) + 1
oracle.start(len(x))
plain, margin = (ATTRIBUTIONS.get("my_saliency")(oracle)(x, target, c) for c in (None, contrast))
shift = (x + 0.25).clamp(0, 1)
linf = CF_METRICS.get("linf")(CFBatch(x, shift, target, torch.rand(4, 10), *torch.zeros(3, 4)))
print(json.dumps(dict(shapes=[list(r.attr.shape) for r in (plain, margin)], contrast=margin.info["contrast"],
                      grad_rows=oracle.grad_queries.tolist(), linf=linf.tolist(), params=list(config_params(
                      MODELS.get("tiny_cnn"), "model")), cam=model.cam_layer, summaries=[r.entry(n).summary for r, n in
                      ((ATTRIBUTIONS, "my_saliency"), (CF_METRICS, "linf"), (MODELS, "tiny_cnn"))])))
"""


def test_the_readme_plugin_examples_work_as_written(tmp_path):
    extending = (ROOT / "README.md").read_text().split("## Extending", 1)[1].split("\n## ", 1)[0]
    files = []
    for name, code in re.findall(r"```python\n# (\w+\.py)\n(.*?)```", extending, re.S):
        (tmp_path / name).write_text(code)
        files.append(str(tmp_path / name))
    assert [Path(f).name for f in files] == ["nearest_blend.py", "my_saliency.py", "my_linf.py", "my_model.py"]
    run = subprocess.run([sys.executable, "-c", EXAMPLES, *files[1:]], capture_output=True, text=True, timeout=300,
                         cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout)
    assert out["shapes"] == [[4, 1, 28, 28]] * 2 and out["contrast"] == "margin"
    assert out["grad_rows"] == [2.0] * 4  # one gradient row per instance and call, counted by the oracle
    assert out["linf"] == pytest.approx([0.25] * 4, abs=1e-6)
    assert out["params"] == ["width"] and out["cam"] == "net.1"  # n_classes comes from the dataset
    assert out["summaries"][0].startswith("|d logit / dx|") and out["summaries"][2].startswith("One 3x3 conv")
