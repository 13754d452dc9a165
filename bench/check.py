"""`bench check`: rerun the deterministic `ci` preset and compare with committed baselines.

Rule (documented in leaderboards/README.md): for every (method, mode, metric) cell of the
baseline, the new mean *regresses* when it is worse, in the metric's own direction, than
the baseline mean by more than

    band = TOLERANCE * half-width of the baseline's 95% interval  (+ a 1e-9 + 1e-6|mean| floor)

where half-width = (hi - lo) / 2 (Wilson for proportions, BCa bootstrap for means, bench.stats),
and 0 for a cell with no interval (a constant sample: it must be reproduced to the floor). The check reruns the same instances with the same seeds,
so run-to-run noise is far smaller than the instance-sampling spread the CI measures; half
the CI catches a 20% rise of a solver's mean L2 on the ci preset while letting
floating-point and thread-order noise pass. Wall-time columns are machine-dependent and are
not checked. A row or metric missing from the new run is a failure; new ones are reported.
Entries whose method declares `deterministic = False` (alibi's numerical-gradient
CounterfactualProto: the same images give different counterfactuals run to run) are checked
on validity only.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from bench import board

TOLERANCE = 0.5
UNCHECKED = {"seconds"}
ALWAYS_CHECKED = {"validity"}


def _metrics(df: pd.DataFrame) -> list[str]:
    return [c[:-3] for c in df.columns if c.endswith("_lo") and c[:-3] in df.columns and c[:-3] not in UNCHECKED]


def compare(baseline: pd.DataFrame, new: pd.DataFrame, directions: dict[str, bool],
            tolerance: float = TOLERANCE, nondeterministic: set = frozenset()) -> pd.DataFrame:
    """One row per checked cell: baseline, new, band, change, verdict (ok/worse/better/missing)."""
    key = ["method", "mode"]
    base = baseline.fillna({"mode": ""}).set_index(key)
    cur = new.fillna({"mode": ""}).set_index(key)
    rows = []
    for idx, b in base.iterrows():
        for m in _metrics(baseline):
            if idx[0] in nondeterministic and m not in ALWAYS_CHECKED:
                continue
            higher = directions.get(m, True)
            row = dict(method=idx[0], mode=idx[1], metric=m, better="higher" if higher else "lower",
                       baseline=b[m], new=np.nan, band=np.nan, change=np.nan)
            if idx not in cur.index or m not in cur.columns:
                rows.append({**row, "verdict": "missing"})
                continue
            new_v, base_v = float(cur.loc[idx, m]), float(b[m])
            half = (float(b[f"{m}_hi"]) - float(b[f"{m}_lo"])) / 2
            # a cell with no interval (a constant sample, n < 2) must be reproduced to the floor
            band = tolerance * (half if np.isfinite(half) else 0.0) + 1e-9 + 1e-6 * abs(base_v)
            change = new_v - base_v
            worse = -change if higher else change
            if np.isnan(base_v) and np.isnan(new_v):
                verdict = "ok"
            elif np.isnan(new_v) or np.isnan(base_v):
                verdict = "worse" if np.isnan(new_v) else "better"
            else:
                verdict = "worse" if worse > band else "better" if -worse > band else "ok"
            rows.append({**row, "new": new_v, "band": band, "change": change, "verdict": verdict})
    return pd.DataFrame(rows)


def _provenance(prov_path: Path) -> tuple[dict[str, bool], set]:
    """Metric directions and the nondeterministic methods recorded in a baseline's JSON."""
    if not prov_path.exists():
        return {}, set()
    prov = board.read_json(prov_path)
    return board.directions([prov]), {e["method"] for e in prov["entries"] if not e.get("deterministic", True)}


def format_table(report: pd.DataFrame) -> str:
    moved = report[report.verdict != "ok"]
    if moved.empty:
        return "all cells within their bands"
    lines = [f"{'method':<22} {'mode':<10} {'metric':<24} {'baseline':>10} {'new':>10} {'change':>10} "
             f"{'band':>9}  verdict (better is)"]
    for _, r in moved.iterrows():
        lines.append(f"{r.method:<22} {r['mode'] or '-':<10} {r.metric:<24} {r.baseline:>10.4g} {r.new:>10.4g} "
                     f"{r.change:>+10.4g} {r.band:>9.3g}  {r.verdict.upper()} ({r.better})")
    return "\n".join(lines)


def board_config(folder: str | Path, cli_cfg, plugins: tuple[str, ...] | list[str] = ()):
    """The RunConfig a published board was made with (from its provenance), on this machine's paths.

    The board's own config is taken as recorded; device, cache dir and `retrain` come from the
    command line (`cli_cfg`); the cli refuses `--limit` (a board is verified on its whole error
    set), and the limit of the preset `cli_cfg` came from (`ci`'s 24) is not the board's.

    A board's files never run code: the plugins its provenance names are never imported. Only
    the `plugins` the user names (`--plugin FILE`) are; a board whose entries are not known
    without its plugins (built-in or an installed entry point) is refused, naming them.
    """
    from bench.config import RunConfig, build
    from bench.contract.params import ConfigError

    folder = Path(folder)
    prov_path = board.provenance_path(folder)
    if prov_path is None:
        raise FileNotFoundError(f"{folder} has no counterfactuals.json or attributions.json: not a board folder")
    prov = board.read_json(prov_path)
    if not isinstance(prov.get("config"), dict):
        raise board.BoardError(f"{prov_path}: no recorded config (key 'config'); this board cannot be rerun: "
                         "restore the file from the board's source")
    recorded = dict(prov["config"])
    named = recorded.get("plugins") or []
    if named and not plugins:
        missing = _unknown_entries(folder)
        if missing:
            raise ConfigError(f"check --board {folder}: the board was made with plugin(s) "
                              f"{', '.join(map(repr, named))[:120]} (for {', '.join(missing)[:120]}); a board's files "
                              "never run code: name the plugin you trust with --plugin FILE, or install it as an "
                              "entry point")
    recorded.update(device=cli_cfg.device, cache_dir=cli_cfg.cache_dir, retrain=cli_cfg.retrain, store=None,
                    out=None, publish=False, plugins=list(plugins))
    try:
        return build(RunConfig, recorded)
    except ConfigError as e:
        raise ConfigError(f"{prov_path}: its recorded config is not valid here: {e}") from None


def _unknown_entries(folder: Path) -> list[str]:
    """'kind name' of each entry a board's provenance names that no registry knows (built-ins and entry
    points only: no plugin is imported)."""
    from bench.data import DATASETS
    from bench.models import MODELS
    from metrics import ATTR_METRICS, CF_METRICS
    from solvers import ATTRIBUTIONS, SOLVERS

    missing = []
    # per table: the registry of its methods, of its metrics, and the config key that lists its methods
    known = {board.COUNTERFACTUALS: (SOLVERS, CF_METRICS, "solvers"), board.ATTRIBUTIONS: (ATTRIBUTIONS, ATTR_METRICS,
                                                                                            "methods")}
    for t in board.tables_in(folder):
        registry, metrics, listed = known[t]
        prov = board.read_json(t.json(folder))
        cfg = prov.get("config") or {}
        section = cfg.get(t.stem) or {}
        names = section.get(listed) or []
        pairs = [(registry, e.get("method")) for e in prov.get("entries") or []] + [(registry, n) for n in names]
        pairs += [(CF_METRICS if m.get("name") in CF_METRICS else metrics, m.get("name"))
                  for m in prov.get("metrics") or []]  # (attributions list `seconds`, a counterfactual metric)
        pairs += [(DATASETS, cfg.get("dataset")), (MODELS, cfg.get("model"))]
        for reg, name in pairs:
            if isinstance(name, str) and name not in reg and f"{reg.kind} {name}" not in missing:
                missing.append(f"{reg.kind} {name}")
    return missing


def _manifest(folder: Path) -> str | None:
    """The error manifest's sha256 a board's (first) provenance records; None without provenance."""
    path = board.provenance_path(folder)
    return None if path is None else board.read_json(path)["errors"]["manifest_sha256"]


def check(cfg, baseline_dir: str, update: bool = False, progress: bool = True,
          tolerance: float = TOLERANCE) -> int:
    """Run `cfg` and compare (or, with update, replace) the baselines. Returns the exit code."""
    from bench.runner import run

    baseline = Path(baseline_dir)
    with tempfile.TemporaryDirectory() as tmp:
        # A fresh store: the check must recompute, never read results an older code left behind.
        cfg_run = replace(cfg, out=tmp, store=str(Path(tmp) / "store.sqlite"), publish=False)
        summary = run(cfg_run, progress=progress)
        produced = Path(summary["folder"])
        if update:
            from bench import atomic
            from bench.publish import pin_weights

            pin_weights(summary["checkpoints"])  # the baselines' weights ship with them
            for f in produced.iterdir():
                atomic.write_bytes(baseline / f.name, f.read_bytes())
            print(f"bench check: baselines rewritten in {baseline}")
            return 0
        failed, total = 0, 0
        base_manifest, new_manifest = _manifest(baseline), _manifest(produced)
        if base_manifest and new_manifest != base_manifest:
            print(f"bench check: the error set differs from the baseline's (manifest {new_manifest[:12]} vs "
                  f"{base_manifest[:12]}): different model weights; every cell below compares other images",
                  file=sys.stderr)
            failed += 1
        for t in board.TABLES:
            base_csv = t.csv(baseline)
            if not base_csv.exists():
                continue
            new_csv = t.csv(produced)
            if not new_csv.exists():
                print(f"bench check: {t.stem}: the check run produced no table", file=sys.stderr)
                failed += 1
                continue
            directions, nondeterministic = _provenance(t.json(baseline))
            report = compare(board.read_table(base_csv), board.read_table(new_csv), directions, tolerance,
                             nondeterministic)
            bad = report[report.verdict.isin(["worse", "missing"])]
            total += len(report)
            failed += len(bad)
            print(f"== {t.stem}: {len(report)} cells, {len(bad)} regressed, "
                  f"{(report.verdict == 'better').sum()} improved")
            print(format_table(report))
    if failed:
        print(f"bench check: FAILED: {failed} of {total} cells regressed (see above); "
              "if the change is deliberate, run `python -m bench check --update`", file=sys.stderr)
        return 1
    print(f"bench check: ok ({total} cells)")
    return 0
