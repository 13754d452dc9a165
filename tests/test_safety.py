"""Crash and concurrency safety: damaged files, pinned reference weights, locks, kill and resume."""

from __future__ import annotations

import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from bench import checkpoints
from bench.cli import main
from bench.config import make_config
from bench.data.splits import Split
from bench.models.train import load_or_train
from bench.publish import pin_weights
from bench.store import TABLES, Store, StoreError

PY = [sys.executable, "-m", "bench"]


def _small(mnist):
    """The first 2,000 real training images: one epoch trains in a couple of seconds."""
    part = lambda s, n: Split(s.x[:n], s.y[:n])  # noqa: E731
    return dataclasses.replace(mnist, train=part(mnist.train, 2000), val=part(mnist.val, 500),
                               test=part(mnist.test, 500))


def _train(mnist, cache, **kw):
    cfg = make_config("default", cache_dir=str(cache), device="cpu", overrides=["train.epochs=1"], **kw)
    return load_or_train(cfg, _small(mnist), torch.device("cpu"), progress=False)[1]


@pytest.mark.parametrize("damage", ["truncate", "foreign", "json"])
def test_damaged_cached_checkpoint_is_rebuilt_and_said(mnist, tmp_path, caplog, damage):
    first = _train(mnist, tmp_path)
    path = Path(first["checkpoint"])
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:1000])
    elif damage == "foreign":
        torch.save({"not": "a state dict"}, path)
    else:
        path.with_suffix(".json").write_text("{not json")
    again = _train(mnist, tmp_path)
    assert again["source"] == "trained" and again["weights_sha256"] == first["weights_sha256"]
    assert str(path) in caplog.text and "training it again" in caplog.text
    assert _train(mnist, tmp_path)["source"] == "cache"  # the rebuilt file is whole again
    assert not list(path.parent.glob("*.tmp"))  # no temporary left behind


def test_reference_weights_are_used_pinned_and_skipped_by_retrain(mnist, tmp_path, monkeypatch, caplog):
    ref = tmp_path / "weights"
    monkeypatch.setenv(checkpoints.REFERENCE_ENV, str(ref))
    trained = _train(mnist, tmp_path / "machine_a")
    pin_weights([trained])
    assert (ref / trained["relpath"]).exists() and trained["relpath"] in checkpoints.pinned(ref)
    caplog.set_level("INFO", logger="bench")
    fresh = _train(mnist, tmp_path / "empty_cache")  # a newcomer: empty cache, same config
    assert fresh["source"] == "reference" and fresh["weights_sha256"] == trained["weights_sha256"]
    assert "using reference weights" in caplog.text
    assert not (tmp_path / "empty_cache" / "models").exists()  # nothing trained, nothing cached
    own = _train(mnist, tmp_path / "empty_cache", retrain=True)
    assert own["source"] == "trained" and Path(own["checkpoint"]).is_relative_to(tmp_path / "empty_cache")


def test_reference_weights_that_do_not_match_their_pin_are_a_one_line_error(mnist, tmp_path, monkeypatch,
                                                                               capsys):
    ref = tmp_path / "weights"
    monkeypatch.setenv(checkpoints.REFERENCE_ENV, str(ref))
    trained = _train(mnist, tmp_path / "a")
    pin_weights([trained])
    pinned_file = ref / trained["relpath"]
    pinned_file.write_bytes(pinned_file.read_bytes()[:-10] + b"0123456789")  # same size, other bytes
    with pytest.raises(checkpoints.CheckpointError, match="do not match their pinned sha256"):
        _train(mnist, tmp_path / "b")
    code = main(["train", "--cache-dir", str(tmp_path / "b"), "--set", "train.epochs=1", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and str(pinned_file) in err and "git checkout" in err


@pytest.mark.parametrize("content", [b"SQLite format 3\x00" + b"\x00" * 200, b"hello, not a database" * 50])
def test_damaged_store_is_refused_before_any_work(tmp_path, content, capsys):
    store = tmp_path / "store.sqlite"
    store.write_bytes(content)
    code = main(["run", "--preset", "tiny", "--cache-dir", str(tmp_path / "cache"), "--quiet",
                 "--set", f'store="{store}"'])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and str(store) in err
    assert store.read_bytes() == content  # never destroyed
    assert not (tmp_path / "cache" / "models").exists()  # refused before data or training


def test_foreign_sqlite_database_is_not_touched(tmp_path):
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(StoreError, match="not a bench run store"):
        Store(path)
    with sqlite3.connect(path) as con:
        assert [r[0] for r in con.execute("SELECT name FROM sqlite_master")] == ["invoices"]


def test_a_second_run_on_a_held_store_is_refused(tmp_path, capsys):
    store = Store(tmp_path / "s.sqlite").acquire()
    try:
        code = main(["run", "--preset", "tiny", "--cache-dir", str(tmp_path / "cache"), "--quiet",
                     "--set", f'store="{store.path}"'])
    finally:
        store.release()
    err = capsys.readouterr().err.strip()
    assert code == 2 and "another bench run is using the run store" in err and "\n" not in err


def _open_store(path, queue, barrier):
    barrier.wait()
    try:
        Store(path)
        queue.put("ok")
    except StoreError as e:
        queue.put(str(e))


def test_processes_creating_one_new_store_at_once_all_succeed(tmp_path):
    """Four processes open the same new file at once, 30 times: without the retry on the switch to
    WAL, some process was refused with "database is locked" (CI saw it in two runs on one store)."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    for round_ in range(30):
        path, queue, barrier = tmp_path / f"s{round_}.sqlite", ctx.Queue(), ctx.Barrier(4)
        procs = [ctx.Process(target=_open_store, args=(path, queue, barrier)) for _ in range(4)]
        for p in procs:
            p.start()
        results = [queue.get(timeout=120) for _ in procs]
        for p in procs:
            p.join()
        assert results == ["ok"] * 4, results
        assert TABLES <= {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")}


def _cli(*args, cache):
    env = {**os.environ, "BENCH_REFERENCE_DIR": str(cache / "no_reference")}
    return subprocess.Popen(PY + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.slow
def test_two_trainings_at_once_write_one_checkpoint(tmp_path):
    """Same config, same empty cache, started together: one trains, the other waits and loads."""
    args = ["train", "--cache-dir", str(tmp_path), "--set", "train.epochs=1", "--quiet"]
    procs = [_cli(*args, cache=tmp_path) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-500:] for o in outs]
    import json

    metas = [json.loads(o[0]) for o in outs]
    assert metas[0]["weights_sha256"] == metas[1]["weights_sha256"]
    assert sorted(m["cached"] for m in metas) == [False, True]
    folder = tmp_path / "models" / "mnist"
    assert len(list(folder.glob("*.pt"))) == 1 and not list(folder.glob("*.tmp"))


def _records(store: Path) -> int:
    try:
        with sqlite3.connect(store, timeout=1) as con:
            return con.execute("SELECT COUNT(*) FROM records").fetchone()[0]
    except sqlite3.Error:
        return 0


def _tables(folder: Path) -> dict[str, pd.DataFrame]:
    """Every leaderboard CSV without its wall-time columns (they differ on every run)."""
    out = {}
    for stem in ("counterfactuals", "attributions"):
        df = pd.read_csv(folder / f"{stem}.csv")
        out[stem] = df[[c for c in df.columns if not c.startswith("seconds")]]
    return out


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_tables(tmp_path, cache_dir):
    """SIGKILL mid-way, start again: only the missing work runs, and the tables equal a clean run's."""
    common = ["run", "--preset", "tiny", "--cache-dir", cache_dir, "--quiet", "--device", "cpu"]
    store = tmp_path / "killed.sqlite"
    proc = subprocess.Popen(PY + common + ["--out", str(tmp_path / "killed"), "--set", f'store="{store}"'],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while _records(store) == 0 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    n_at_kill = _records(store)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 0 < n_at_kill < 6 * 5  # tiny: 6 errors x (2 solvers + 3 methods) records when complete
    resumed = subprocess.run(PY + common + ["--out", str(tmp_path / "killed"), "--set", f'store="{store}"'],
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    clean = subprocess.run(PY + common + ["--out", str(tmp_path / "clean"), "--set",
                                          f'store="{tmp_path / "clean.sqlite"}"'],
                           capture_output=True, text=True, timeout=600)
    assert clean.returncode == 0, clean.stderr[-2000:]
    [got] = (tmp_path / "killed" / "mnist" / "cnn").iterdir()  # the killed run wrote no folder
    [want] = (tmp_path / "clean" / "mnist" / "cnn").iterdir()
    for stem, df in _tables(want).items():
        pd.testing.assert_frame_equal(_tables(got)[stem], df)
    assert _records(store) == _records(tmp_path / "clean.sqlite") == 30  # nothing duplicated


@pytest.mark.slow
def test_two_runs_at_once_on_one_store_one_refused(tmp_path, cache_dir):
    store = tmp_path / "shared.sqlite"
    args = ["run", "--preset", "tiny", "--cache-dir", cache_dir, "--quiet", "--out", str(tmp_path / "o"),
            "--set", f'store="{store}"']
    procs = [subprocess.Popen(PY + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], [o[1][-500:] for o in outs]
    refused = next(o[1] for p, o in zip(procs, outs) if p.returncode == 2)
    assert "another bench run is using the run store" in refused
    assert _records(store) == 30  # one complete run's records, none twice
