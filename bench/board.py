"""The on-disk board format: which tables a board folder holds and what each file is called.

A board folder (a run's output, or a published `leaderboards/<dataset>/<model>/`) holds one
table per task kind, each as `<stem>.csv` (the leaderboard), `<stem>.md` (it, in words),
`<stem>.json` (its provenance) and `<stem>_instances.csv` (every per-instance score), plus
`errors.csv` (the error manifest). Everything that reads or writes a board names its files
through this module. Imports no torch and no pandas.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Table:
    """One task kind's table on a board.

    kind: the task as store keys and the instances' `task` column name it ("counterfactual").
    stem: its files' stem and its config section ("counterfactuals").
    title: its heading; short: its progress-bar label; headline: the metrics a summary shows.
    """

    kind: str
    stem: str
    title: str
    short: str
    headline: tuple[str, ...]

    def csv(self, folder: Path) -> Path:
        return Path(folder) / f"{self.stem}.csv"

    def md(self, folder: Path) -> Path:
        return Path(folder) / f"{self.stem}.md"

    def json(self, folder: Path) -> Path:
        return Path(folder) / f"{self.stem}.json"

    def instances(self, folder: Path) -> Path:
        return Path(folder) / f"{self.stem}_instances.csv"


COUNTERFACTUALS = Table("counterfactual", "counterfactuals", "Counterfactuals", "cf",
                        ("validity", "l2", "queries", "seconds"))
ATTRIBUTIONS = Table("attribution", "attributions", "Attributions", "attr",
                     ("deletion_auc", "insertion_auc", "seconds"))
TABLES = (COUNTERFACTUALS, ATTRIBUTIONS)
STEMS = tuple(t.stem for t in TABLES)
MANIFEST = "errors.csv"


def table(name: str) -> Table:
    """The table whose kind or stem is `name` ("counterfactual" or "counterfactuals")."""
    for t in TABLES:
        if name in (t.kind, t.stem):
            return t
    raise KeyError(f"no board table {name!r} ({' | '.join(STEMS)})")


def tables_in(folder: Path) -> list[Table]:
    """The tables a board folder holds (those whose provenance JSON is there), in TABLES order."""
    return [t for t in TABLES if t.json(folder).is_file()]
