"""Soak: the ci preset repeated in one process leaks neither memory nor file handles.

Marked `soak` (deselected by default; minutes): `python -m pytest -m soak -s`. Each round is a
whole ci run in a fresh store; after a warm-up round, resident memory and open file
descriptors must stay flat (the figures are printed for the issue note).
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

ROUNDS = 4


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.soak
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_ci_preset_repeated_in_one_process_does_not_grow(tmp_path, cache_dir):
    from bench.config import make_config
    from bench.contract.memory import keep_freed_memory
    from bench.runner import run

    keep_freed_memory()  # as the CLI does
    rss, fds = [], []
    for i in range(ROUNDS):
        cfg = make_config("ci", [f'store="{tmp_path / f"s{i}.sqlite"}"'], out=str(tmp_path / "out"),
                          cache_dir=cache_dir, device="cpu")
        run(cfg, progress=False)
        gc.collect()
        rss.append(_rss_mib())
        fds.append(_fds())
        print(f"soak round {i + 1}: rss {rss[-1]:.0f} MiB, open fds {fds[-1]}")
    assert max(fds[1:]) - fds[1] <= 2, fds
    assert max(rss[1:]) - rss[1] < 150, rss  # after warm-up: no growth beyond allocator noise
