"""`bench check`: noise passes, a real regression fails with a readable table."""

import pandas as pd
import pytest

from bench.check import compare
from bench.cli import main


def _table(l2, lo, hi):
    return pd.DataFrame([dict(method="gradient", mode="", l2=l2, l2_lo=lo, l2_hi=hi, validity=1.0,
                              validity_lo=1.0, validity_hi=1.0, seconds=0.1, seconds_lo=0.1, seconds_hi=0.1)])


def test_rule_uses_half_the_baseline_ci_and_the_metric_direction():
    base = _table(0.50, 0.40, 0.60)  # half-width 0.10 -> band 0.05
    dirs = {"l2": False, "validity": True}
    ok = compare(base, _table(0.54, 0.4, 0.6), dirs)
    assert set(ok.verdict) == {"ok"} and "seconds" not in set(ok.metric)  # wall time is not checked
    worse = compare(base, _table(0.60, 0.5, 0.7), dirs).set_index("metric")
    assert worse.loc["l2", "verdict"] == "worse"
    better = compare(base, _table(0.40, 0.3, 0.5), dirs).set_index("metric")
    assert better.loc["l2", "verdict"] == "better"
    gone = compare(base, _table(0.5, 0.4, 0.6).assign(method="other"), dirs)
    assert set(gone.verdict) == {"missing"}


@pytest.mark.slow
def test_check_passes_a_rerun_and_fails_a_20_percent_l2_regression(tmp_path, cache_dir, capsys):
    base = tmp_path / "baseline"
    common = ["--preset", "tiny", "--cache-dir", cache_dir, "--quiet", "--limit", "24",
              "--set", f'store="{tmp_path / "s.sqlite"}"', "--set", "attributions.methods=[]",
              "--set", 'counterfactuals.solvers=["gradient"]']
    assert main(["check", "--update", "--baseline", str(base), *common]) == 0
    before = pd.read_csv(base / "counterfactuals.csv")
    assert main(["check", "--baseline", str(base), *common]) == 0
    # --board reruns the board's own recorded config (here tiny, 24 errors), not check's ci preset
    assert main(["check", "--board", str(base), "--cache-dir", cache_dir, "--quiet"]) == 0
    # A changed solver default (a 4x larger Adam step) that makes its counterfactuals larger.
    worse = ["--set", "counterfactuals.params.gradient.lr=0.04"]
    capsys.readouterr()
    assert main(["check", "--baseline", str(base), *common, *worse]) == 1
    out = capsys.readouterr()
    assert "FAILED" in out.err
    row = [line for line in out.out.splitlines() if line.startswith("gradient") and " l2 " in line]
    assert row and "WORSE (lower)" in row[0]
    new_l2 = float(row[0].split()[4])
    assert new_l2 >= 1.2 * before["l2"].item()  # the regression is (at least) the 20% the issue names
