"""Publishing a study in sittings (bench/study/resume.py): a cell an earlier sitting published from the
same config and checkpoint is kept byte for byte, and each sitting's study table covers every cell
published so far. Real MNIST, a real CNN (the one tests/test_study_common.py trains, cached), real methods.
"""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest

from bench.cli import main
from bench.config import make_config
from bench.site.index import board_kind
from bench.site.study import study_page
from bench.study import resume
from bench.study.cells import cells

pytestmark = pytest.mark.slow

GRID = """
extends = "default"
n_bootstrap = 50
n_figure = 1

[study]
name = "sittings"
seeds = [0, 1]

[[study.models]]
label = "cnn-long"
model = "cnn"
train = { max_steps = 400 }

[counterfactuals]
solvers = ["gradient"]
metrics = ["validity", "l2", "queries", "grad_queries", "seconds"]

[attributions]
methods = ["saliency", "random"]
metrics = ["del_morf_zeros"]
"""


def test_a_study_published_in_two_sittings_keeps_the_first_sittings_cell(tmp_path, cache_dir, monkeypatch):
    monkeypatch.setenv("BENCH_REFERENCE_DIR", str(tmp_path / "weights"))  # the publish pins here
    preset = tmp_path / "sittings.toml"
    preset.write_text(GRID)
    argv = ["-q", "run", "--preset", str(preset), "--cache-dir", cache_dir, "--store", str(tmp_path / "s.sqlite"),
            "--out", str(tmp_path / "lb"), "--device", "cpu", "--publish", "--force"]
    folder = tmp_path / "lb" / "mnist" / "sittings"

    assert main(argv + ["--set", 'study.only=["cnn-long-seed0"]']) == 0  # sitting 1: one cell
    first = (folder / "cnn-long-seed0" / "cell.json").read_bytes()
    assert json.loads(first)["identity"]
    first_study = json.loads((folder / "study.json").read_text())
    assert [c["folder"] for c in first_study["cells"]] == ["cnn-long-seed0"]
    assert "study.only" not in first_study["command"]  # the table's command is the grid's, not the sitting's
    assert len(pd.read_csv(folder / "study.csv")) >= 1
    assert "INCOMPLETE: 1 of the grid's 2 cells" in (folder / "study.md").read_text()
    html = study_page(folder, "mnist/sittings", {}, 2)  # the site says so first, in the caveats banner
    banner = html[html.index('class="banner caveats"'):]
    assert "INCOMPLETE: 1 of the grid" in banner[:banner.index("</div>")]
    assert board_kind(dict(title="mnist/sittings/cnn-long-seed0", folder=folder / "cnn-long-seed0")) == "zoo"
    assert board_kind(dict(title="mnist/cnn", folder=tmp_path / "lb" / "mnist" / "cnn")) == "main"

    assert main(argv) == 0  # sitting 2: the whole grid; seed 0 is kept, seed 1 explained
    assert (folder / "cnn-long-seed0" / "cell.json").read_bytes() == first
    study = json.loads((folder / "study.json").read_text())
    assert study["kept"] == ["mnist/cnn-long-seed0"] and study["n_grid"] == 2
    assert [c["folder"] for c in study["cells"]] == ["cnn-long-seed0", "cnn-long-seed1"]
    assert "INCOMPLETE" not in (folder / "study.md").read_text()
    assert "study.only" not in study["command"] and "study.only" not in (folder / "study.md").read_text()

    # a cell whose config changed in a way that moves its numbers is explained again; where it ran is not such a change
    cell = next(c for c in cells(make_config(str(preset))) if c.seed == 0)
    cfg = dataclasses.replace(cell.cfg, cache_dir=cache_dir)
    assert resume.finished(cfg, folder / cell.name)
    assert resume.finished(dataclasses.replace(cfg, device="cpu", preset="renamed"), folder / cell.name)
    changed = dataclasses.replace(cfg, attributions=dataclasses.replace(cfg.attributions, methods=("saliency",)))
    assert not resume.finished(changed, folder / cell.name)
    assert not resume.finished(cfg, folder / "cnn-long-seed9")
