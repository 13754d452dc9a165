"""Progress bars: one switch for the whole process (`--quiet` turns it off), tqdm underneath.

Bars count instances (errors), not batches, so a solver that takes all errors in one batch
still shows what it is doing: `live_queries` puts the oracle's running query count and the
elapsed time on the bar while the batch runs.
"""

from __future__ import annotations

import time

from tqdm.auto import tqdm

_ENABLED = True


def set_enabled(flag: bool) -> None:
    global _ENABLED
    _ENABLED = bool(flag)


def enabled() -> bool:
    return _ENABLED


def bar(total: int, desc: str, unit: str = "err", progress: bool = True) -> tqdm:
    """A bar over `total` instances; silent when progress is off here or process-wide."""
    return tqdm(total=total, desc=desc, unit=unit, disable=not (progress and _ENABLED) or total == 0,
                leave=False, dynamic_ncols=True, mininterval=0.5)


def live_queries(bar: tqdm, every_s: float = 0.5):
    """An `Oracle.on_rows` callback: the batch's running query count on `bar`, redrawn at most every `every_s`."""
    last = [0.0]

    def on_rows(rows: int) -> None:
        now = time.monotonic()
        if now - last[0] >= every_s:
            last[0] = now
            bar.set_postfix_str(f"{rows:,} queries in batch")  # refreshes the line (a one-batch bar moves)

    return on_rows
