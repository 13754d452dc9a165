"""The on-disk board format: which tables a board folder holds, what its files are called, how they are read and
written, and how its numbers are printed.

A board folder (a run's output, or a published `leaderboards/<dataset>/<model>/`) holds one
table per task kind, each as `<stem>.csv` (the leaderboard), `<stem>.md` (it, in words),
`<stem>.json` (its provenance), `<stem>_instances.csv` (every per-instance score) and
`<stem>_artifacts.npz` (every per-instance image), plus `errors.csv` (the error manifest).
Everything that reads or writes a board names its files, reads its tables and provenance and
prints its numbers through this module. Imports no torch; pandas only inside the functions that
read a table.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from bench import atomic

MANIFEST = "errors.csv"


def manifest_hash(index, true, pred, weights_sha256: str, rows: str = "errors") -> str:
    """The sha256 of a board's manifest rows (test index, true, pred) and the weights hash (+ the row kind).

    `rows` "correct" (a sample of correct predictions) enters the hash; "errors" does not, so every
    error board's hash is what it was before row kinds existed. Takes tensors or arrays (anything
    with .tolist()); imports no torch, so `bench site` and `bench list` stay light.
    """
    import hashlib

    blob = dict(rows=list(zip(index.tolist(), true.tolist(), pred.tolist())), weights=weights_sha256)
    if rows != "errors":
        blob["kind"] = rows
    return hashlib.sha256(json.dumps(blob, separators=(",", ":")).encode()).hexdigest()
FLOAT_FORMAT = "%.6g"  # the numbers of a board's CSV tables
RESTORE = "restore the board's files from where they came from (git checkout, or rerun the board)"
# the meta-evaluation's flags block under a <stem>.md's table (bench.meta.annotate writes it)
FLAGS_BEGIN, FLAGS_END = "<!-- meta-evaluation flags -->", "<!-- /meta-evaluation flags -->"


@dataclass(frozen=True)
class Table:
    """One task kind's table on a board.

    kind: the task as store keys and bench.load's `task` column name it ("counterfactual").
    stem: its files' stem and its config section ("counterfactuals").
    title: its heading; short: its progress-bar label; headline: the metrics a summary shows.
    Its files: `csv(folder)` and the like (`csv().name`: the bare file name).
    """

    kind: str
    stem: str
    title: str
    short: str
    headline: tuple[str, ...]

    def csv(self, folder: Path = Path()) -> Path:
        return Path(folder) / f"{self.stem}.csv"

    def md(self, folder: Path = Path()) -> Path:
        return Path(folder) / f"{self.stem}.md"

    def json(self, folder: Path = Path()) -> Path:
        return Path(folder) / f"{self.stem}.json"

    def instances(self, folder: Path = Path()) -> Path:
        return Path(folder) / f"{self.stem}_instances.csv"

    def artifacts(self, folder: Path = Path()) -> Path:
        return Path(folder) / f"{self.stem}_artifacts.npz"


COUNTERFACTUALS = Table("counterfactual", "counterfactuals", "Counterfactuals", "cf",
                        ("validity", "l2", "queries", "seconds"))
# the headline deletion: zeros leaks least of the four operators on MNIST (metrics/leakage.py; README)
ATTRIBUTIONS = Table("attribution", "attributions", "Attributions", "attr",
                     ("del_morf_zeros", "del_lerf_zeros", "seconds"))
TABLES = (COUNTERFACTUALS, ATTRIBUTIONS)
STEMS = tuple(t.stem for t in TABLES)


def table(name: str) -> Table:
    """The table whose kind or stem is `name` ("counterfactual" or "counterfactuals")."""
    for t in TABLES:
        if name in (t.kind, t.stem):
            return t
    raise KeyError(f"no board table {name!r} ({' | '.join(STEMS)})")


def tables_in(folder: Path) -> list[Table]:
    """The tables a board folder holds (those whose provenance JSON is there), in TABLES order."""
    return [t for t in TABLES if t.json(folder).is_file()]


def provenance_path(folder: Path) -> Path | None:
    """The first provenance JSON of a board folder (in TABLES order), None when it has none."""
    return next((t.json(folder) for t in tables_in(folder)), None)


# -- reading ---------------------------------------------------------------------------------------------------

class BoardError(ValueError):
    """A board's files do not match their provenance, or cannot be read (one line naming the file)."""


def read_json(path: Path) -> dict:
    """A provenance JSON file as a dict, or a BoardError naming it."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise BoardError(f"{path}: not readable JSON ({type(e).__name__}: {str(e).splitlines()[0][:80]}); "
                         f"{RESTORE}") from None
    if not isinstance(data, dict):
        raise BoardError(f"{path}: not a provenance record (a JSON object); {RESTORE}")
    return data


def read_csv(path: Path, **kw):
    """A CSV file as a DataFrame (`kw`: pandas.read_csv's), or a BoardError naming it (empty, cut, not text)."""
    import pandas as pd

    try:
        return pd.read_csv(path, **kw)
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise BoardError(f"{path}: cannot be read as a table ({type(e).__name__}: {str(e).splitlines()[0][:80]}); "
                         f"{RESTORE}") from None


def read_table(path: Path):
    """A board's table (a leaderboard CSV or one beside it) as values: only an empty cell is missing (NaN), so a
    method or mode named "NA" or "None" stays a name."""
    return read_csv(path, keep_default_na=False, na_values=[""])


def read_instances(path: Path):
    """A `<stem>_instances.csv` as values (as `read_table`, its columns' types inferred over the whole file)."""
    return read_csv(path, keep_default_na=False, na_values=[""], low_memory=False)


def read_as_text(path: Path):
    """A board's CSV with every cell as its exact text ("" when empty), as a page shows and carries it."""
    return read_csv(path, dtype=str, keep_default_na=False)


def metric_field(provenances, field: str, default=None) -> dict:
    """metric -> one field of its provenance record (kind, higher_is_better, ...), over `provenances` (dicts, a
    later one's record replacing an earlier one's)."""
    out = {}
    for prov in provenances:
        out.update({m["name"]: m.get(field, default) for m in prov.get("metrics") or []})
    return out


def directions(provenances) -> dict[str, bool]:
    """metric -> higher_is_better, as `provenances` (dicts) record it (True where a record does not say)."""
    return {k: bool(v) for k, v in metric_field(provenances, "higher_is_better", True).items()}


# -- writing ---------------------------------------------------------------------------------------------------

def write_csv(df, path: Path) -> Path:
    """A table as a board writes it (no index, FLOAT_FORMAT), atomically."""
    return atomic.write_text(path, df.to_csv(index=False, float_format=FLOAT_FORMAT))


def write(folder: Path, t: Table, df, markdown: str, provenance: dict) -> list[Path]:
    """Write a table's <stem>.csv, <stem>.md and <stem>.json into `folder` (each atomically)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [write_csv(df, t.csv(folder)), atomic.write_text(t.md(folder), markdown)]
    paths.append(atomic.write_json(t.json(folder), provenance))  # strict JSON: NaN/inf as null, counted
    return paths


# -- printing --------------------------------------------------------------------------------------------------

def fmt(x) -> str:
    """A number as the boards print it (3 significant decimals below 1, fewer above; "–" for NaN or no number)."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return "–"
    if not math.isfinite(x):
        return "–"
    a = abs(x)
    return f"{x:.0f}" if a >= 1000 else f"{x:.1f}" if a >= 100 else f"{x:.2f}" if a >= 1 else f"{x:.3f}"


def interval_digits(lo: float, hi: float) -> int | None:
    """None when `fmt` tells lo from hi (or they are equal); else the significant digits that do."""
    if fmt(lo) != fmt(hi) or lo == hi:
        return None
    return next((d for d in range(4, 10) if f"{lo:.{d}g}" != f"{hi:.{d}g}"), 10)


def fmt_interval(mean: float, lo: float, hi: float) -> str:
    """`mean [lo, hi]`, with more significant digits where `fmt` would print lo == hi for lo < hi."""
    digits = interval_digits(lo, hi)
    if digits is None:
        return f"{fmt(mean)} [{fmt(lo)}, {fmt(hi)}]"
    return f"{mean:.{digits}g} [{lo:.{digits}g}, {hi:.{digits}g}]"


def fmt_cell(r, name: str, row_n=None) -> str:
    """One cell of a table row `r` as text: `mean [lo, hi]`, or the reason it has no interval; `(n=k)` where k
    differs from the row's n."""
    method = str(r.get(f"{name}_ci", "") or "")
    lo, hi = r.get(f"{name}_lo", math.nan), r.get(f"{name}_hi", math.nan)
    if method == "timing":
        text = fmt(r[name])
    elif finite(lo) and finite(hi):
        text = fmt_interval(float(r[name]), float(lo), float(hi))
    elif method == "none" or (not method and finite(r[name])):
        n = r.get(f"{name}_n", math.nan)
        text = f"{fmt(r[name])} (no CI: {'constant' if finite(n) and float(n) >= 2 else 'n < 2'})"
    else:
        text = fmt(r[name])
    n = r.get(f"{name}_n", math.nan)
    if row_n is not None and finite(n) and int(float(n)) != int(row_n):
        text += f" (n={int(float(n))})"
    return text


def finite(v) -> bool:
    """Is `v` a finite number (a float, a numpy scalar or a number's text)?"""
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False
