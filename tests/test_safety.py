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
    killed, got = sorted((tmp_path / "killed" / "mnist" / "cnn").iterdir())  # the killed run's folder stays...
    assert (killed / "INCOMPLETE").exists() and not (got / "INCOMPLETE").exists()  # ...marked incomplete
    runs = subprocess.run(PY + ["runs", "--store", str(store)], capture_output=True, text=True, timeout=60).stdout
    assert "incomplete" in runs.splitlines()[0] and runs.splitlines()[1].endswith("done")
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


# -- issue 27: data never executes, foreign databases untouched, damage named, one folder per run ----------
REPO = Path(__file__).resolve().parents[1]
CI_BOARD = REPO / "leaderboards" / "ci"


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("bench: error: ") and "Traceback" not in err, err
    return err


def test_a_board_naming_a_plugin_runs_no_code(tmp_path, monkeypatch, capsys):
    """check, report, load, meta and site read a board whose provenance names a plugin (in the board's own
    folder, relative and absolute): none imports it; check --board says which plugin and refuses."""
    import json
    import shutil

    import bench
    from bench.check import board_config

    board = tmp_path / "sent"
    shutil.copytree(CI_BOARD, board)
    (board / "evil.py").write_text("from pathlib import Path\nPath(__file__).with_name('RAN').write_text('x')\n"
                                   "from bench.contract import SOLVERS\n")
    prov = json.loads((board / "counterfactuals.json").read_text())
    prov["config"]["plugins"] = ["evil.py", str(board / "evil.py")]
    prov["config"]["counterfactuals"]["solvers"].append("evil_solver")
    (board / "counterfactuals.json").write_text(json.dumps(prov))
    monkeypatch.chdir(board)  # "evil.py" resolves into the board itself
    assert main(["check", "--board", str(board), "--cache-dir", str(tmp_path / "cache")]) == 2
    err = _one_line(capsys)
    assert "'evil.py'" in err and "evil_solver" in err and "--plugin FILE" in err
    assert bench.load(board).counterfactuals["method"].tolist()[:2] == ["gradient", "growing_spheres"]
    assert main(["report", str(board)]) == 0
    assert main(["meta", str(board), "--out", str(tmp_path / "meta"), "--n-boot", "5"]) == 0
    assert main(["site", "--root", str(tmp_path), "--out", str(tmp_path / "site")]) == 0
    assert not (board / "RAN").exists() and "bench_plugin_evil" not in sys.modules
    mine = tmp_path / "my_solver.py"  # the user's own copy, named on the command line: that one is used
    mine.write_text("X = 1\n")
    cfg = board_config(board, make_config("ci", cache_dir=str(tmp_path / "cache")), [str(mine)])
    assert cfg.plugins == (str(mine),) and not (board / "RAN").exists()


def _foreign(path: Path) -> bytes:
    with sqlite3.connect(path) as con:  # an application's database sharing a table name with bench's store
        con.execute("CREATE TABLE scores (user TEXT, points INTEGER)")
        con.executemany("INSERT INTO scores VALUES (?, ?)", [("ada", 3), ("bob", 5)])
    con.close()
    return path.read_bytes()


def test_foreign_sqlite_with_a_scores_table_is_left_byte_identical(tmp_path, capsys):
    path = tmp_path / "app.sqlite"
    before = _foreign(path)
    for argv in (["run", "--preset", "tiny", "--store", str(path), "--cache-dir", str(tmp_path / "c")],
                 ["runs", "--store", str(path)], ["config", "--store", str(path)]):
        assert main(argv) == 2
        assert "not a bench run store" in _one_line(capsys)
    with pytest.raises(StoreError, match="it is left as it is"):
        Store(path)
    import bench

    with pytest.raises(StoreError):
        bench.load(path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["app.sqlite"]


def test_a_store_made_before_the_marker_is_adopted_and_marked(tmp_path):
    from bench.store import APPLICATION_ID, SCHEMA

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as con:  # exactly what an earlier bench created
        con.executescript(SCHEMA)
    Store(path).add_entry("k", "counterfactuals", "gradient", "", "1", {}, {})
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert con.execute("SELECT COUNT(*) FROM entries").fetchone()[0] == 1


def _store_with_records(path: Path, n: int = 40) -> str:
    import numpy as np

    store = Store(path)
    store.add_entry("key", "attributions", "saliency", "predicted", "1", {}, {})
    rng = np.random.default_rng(0)
    store.add_records("key", [dict(test_index=i, success=True, seconds=0.1, artifact=rng.random((1, 28, 28)))
                              for i in range(n)])
    return "key"


def test_damaged_store_pages_are_one_line_naming_the_store(tmp_path, capsys):
    path = tmp_path / "store.sqlite"
    _store_with_records(path)
    with sqlite3.connect(path) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    assert len(data) > 5 * 4096
    data[2 * 4096:len(data) - 4096] = os.urandom(len(data) - 3 * 4096)  # pages overwritten in the middle
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=f"run store {path} is damaged"):
        Store(path).acquire()
    with pytest.raises(StoreError, match="is damaged"):
        Store(path).records("key")
    import bench

    with pytest.raises(StoreError, match="is damaged"):
        bench.load(path)
    assert main(["runs", "--store", str(path)]) == 2 and "is damaged" in _one_line(capsys)
    code = main(["run", "--preset", "tiny", "--store", str(path), "--cache-dir", str(tmp_path / "cache"),
                 "--out", str(tmp_path / "out"), "--quiet"])
    assert code == 2 and str(path) in _one_line(capsys)
    assert not (tmp_path / "cache" / "models").exists() and not (tmp_path / "out").exists()  # refused before work


def test_a_damaged_artifact_blob_is_one_line(tmp_path):
    path = tmp_path / "store.sqlite"
    key = _store_with_records(path, 3)
    with sqlite3.connect(path) as con:
        con.execute("UPDATE records SET artifact = ? WHERE test_index = 1", (b"x\x9c not zlib",))
    with pytest.raises(StoreError, match=r"entry key for test index 1 cannot be read \(error: "):
        Store(path).records(key)


def test_a_full_disk_is_said_keeps_the_store_consistent_and_writes_no_board(tmp_path, cache_dir, monkeypatch,
                                                                            capsys):
    """SQLite's max_page_count makes the store's disk full mid-run: the real SQLITE_FULL path."""
    import bench.store

    path = tmp_path / "full.sqlite"
    Store(path)
    connect = bench.store.Store._connect

    def small_disk(self):
        con = connect(self)
        con.execute("PRAGMA max_page_count = 12")
        return con

    monkeypatch.setattr(bench.store.Store, "_connect", small_disk)
    code = main(["run", "--preset", "tiny", "--cache-dir", cache_dir, "--store", str(path), "--quiet",
                 "--out", str(tmp_path / "out"), "--device", "cpu"])
    err = _one_line(capsys)
    assert code == 2 and "is full" in err and str(path) in err and "move it away" not in err
    monkeypatch.undo()
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    [folder] = (tmp_path / "out" / "mnist" / "cnn").iterdir()
    assert (folder / "INCOMPLETE").exists()
    assert not list(folder.glob("*.csv")) and not list(folder.glob("*.json"))  # no partial board


def test_two_runs_started_in_the_same_second_get_two_folders(tmp_path, monkeypatch):
    """The run folder is claimed with an exclusive mkdir when the run starts; 8 processes, one second."""
    import multiprocessing as mp

    from bench import folders

    cfg = make_config("tiny", out=str(tmp_path))
    monkeypatch.setattr(folders.time, "strftime", lambda *a: "20260101T000000Z")  # the same second, always
    ctx = mp.get_context("fork")
    queue, barrier = ctx.Queue(), ctx.Barrier(8)

    def claim():
        barrier.wait()
        queue.put(str(folders.out_dir(cfg, "cnn")))

    procs = [ctx.Process(target=claim) for _ in range(8)]
    for p in procs:
        p.start()
    folders = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join()
    assert len(set(folders)) == 8
    assert sorted(Path(f).name for f in folders) == ["20260101T000000Z"] + [f"20260101T000000Z-{i}" for i in range(1, 8)]
    assert all((Path(f) / "INCOMPLETE").exists() for f in folders)


@pytest.mark.parametrize("damage", ["cut_table", "label", "test_index", "instances", "npz", "npz_stream", "json",
                                    "empty_csv", "no_errors_csv", "incomplete"])
def test_a_damaged_board_is_named_by_every_reader(tmp_path, damage, capsys):
    import shutil

    import bench
    from bench.boardcheck import BoardError

    board = tmp_path / "board"
    shutil.copytree(CI_BOARD, board)
    edit = {"cut_table": "counterfactuals.csv", "label": "errors.csv", "test_index": "errors.csv",
            "instances": "attributions_instances.csv", "npz": "counterfactuals_artifacts.npz",
            "npz_stream": "attributions_artifacts.npz",
            "json": "attributions.json", "empty_csv": "attributions.csv", "no_errors_csv": "errors.csv",
            "incomplete": "INCOMPLETE"}[damage]
    f = board / edit
    if damage in ("cut_table", "instances"):
        lines = f.read_text().splitlines(keepends=True)
        f.write_text("".join(lines[:len(lines) * 2 // 3]))
    elif damage in ("label", "test_index"):
        rows = f.read_text().splitlines(keepends=True)
        pos, index, true, pred = rows[2].strip().split(",")
        rows[2] = f"{pos},{99999 if damage == 'test_index' else index},{true if damage == 'test_index' else 0},{pred}\n"
        f.write_text("".join(rows))
    elif damage == "npz":
        f.write_bytes(f.read_bytes()[:1000])
    elif damage == "npz_stream":  # headers intact, bytes flipped inside the first array's deflate stream
        import zipfile

        data = bytearray(f.read_bytes())
        with zipfile.ZipFile(f) as z:
            info = z.infolist()[0]
        start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 200
        data[start:start + 64] = bytes(b ^ 0xFF for b in data[start:start + 64])
        f.write_bytes(bytes(data))
    elif damage == "json":
        f.write_text(f.read_text()[:-200])
    elif damage == "empty_csv":
        f.write_text("")
    elif damage == "no_errors_csv":
        f.unlink()
    else:
        f.write_text("killed\n")
    with pytest.raises(BoardError, match=str(f) if damage != "no_errors_csv" else "no errors.csv"):
        bench.load(board)
    for argv in (["check", "--board", str(board), "--cache-dir", str(tmp_path / "c")], ["report", str(board)],
                 ["meta", str(board), "--out", str(tmp_path / "m")],
                 ["site", "--root", str(tmp_path), "--out", str(tmp_path / "site")]):
        assert main(argv) == 2, argv
        err = _one_line(capsys)
        assert (f.name in err) if damage != "no_errors_csv" else ("no errors.csv" in err), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["board"]  # no site, no .site.building, no meta


def test_every_committed_board_passes_its_own_check():
    from bench.board import manifest_hash
    from bench.boardcheck import check_board

    rows = [torch.tensor([3, 17, 9]), torch.tensor([1, 2, 3]), torch.tensor([7, 7, 0])]
    assert manifest_hash(*[r.numpy() for r in rows], "w") == manifest_hash(*rows, "w")  # arrays or tensors alike
    assert manifest_hash(*rows, "w", "correct") != manifest_hash(*rows, "w")  # the row kind enters the hash

    folders = sorted({p.parent for s in ("counterfactuals", "attributions") for p in (REPO / "leaderboards").rglob(f"{s}.csv")
                      if "site" not in p.relative_to(REPO / "leaderboards").parts})
    assert len(folders) >= 50  # ci, the cnn boards and their seeds, fashion, resnet_cbam, 45 zoo cells
    for folder in folders:
        check_board(folder, full=True)


def test_nan_weights_in_a_cached_checkpoint_are_rebuilt_and_said(mnist, tmp_path, caplog):
    first = _train(mnist, tmp_path)
    path = Path(first["checkpoint"])
    state = torch.load(path, weights_only=True)
    state[next(k for k, v in state.items() if v.is_floating_point())].view(-1)[0] = float("nan")
    torch.save(state, path)
    with pytest.raises(checkpoints.CheckpointError, match=f"checkpoint {path} holds non-finite weights"):
        checkpoints.load(path)
    again = _train(mnist, tmp_path)
    assert again["source"] == "trained" and again["weights_sha256"] == first["weights_sha256"]
    assert "non-finite" in caplog.text and "training it again" in caplog.text


def _idx(path: Path, array, dims=None) -> None:
    import numpy as np

    a = np.ascontiguousarray(array, dtype=np.uint8)
    dims = a.shape if dims is None else dims
    path.write_bytes(bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims) + a.tobytes())


def _idx_dir(folder: Path, train_x, train_y, test_x, test_y) -> Path:
    folder.mkdir(parents=True)
    for stem, a in (("train-images-idx3-ubyte", train_x), ("train-labels-idx1-ubyte", train_y),
                    ("t10k-images-idx3-ubyte", test_x), ("t10k-labels-idx1-ubyte", test_y)):
        _idx(folder / stem, a)
    return folder


@pytest.mark.parametrize("bad", ["labels_out_of_range", "32x32", "ndim_255", "mismatched_counts", "tiny_train"])
def test_bad_idx_data_is_one_line_naming_the_file(tmp_path, bad):
    import numpy as np

    from bench.data.idx import load_idx_dir

    n = 20
    x, y = np.zeros((n, 28, 28), np.uint8), np.arange(n) % 10
    args = dict(train_x=x, train_y=y, test_x=x, test_y=y)
    if bad == "labels_out_of_range":
        args["test_y"] = np.where(np.arange(n) == 7, 12, y)
    elif bad == "32x32":
        args["train_x"] = np.zeros((n, 32, 32), np.uint8)
    elif bad == "mismatched_counts":
        args["test_y"] = y[:-3]
    folder = _idx_dir(tmp_path / "idx", **args)
    if bad == "ndim_255":
        _idx(folder / "t10k-images-idx3-ubyte", np.zeros(10, np.uint8), dims=[1] * 255)
    want = {"labels_out_of_range": r"t10k-labels-idx1-ubyte: label 12 at position 7 is outside 0-9",
            "32x32": r"train-images-idx3-ubyte: images are 32x32, bench needs 28x28",
            "ndim_255": r"t10k-images-idx3-ubyte: its IDX header says 255 dimensions",
            "mismatched_counts": r"t10k-images-idx3-ubyte holds 20 images but .*t10k-labels-idx1-ubyte holds 17",
            "tiny_train": r"train-images-idx3-ubyte: 20 training images; .* at least 50,001"}[bad]
    with pytest.raises(ValueError, match=want):
        load_idx_dir(folder)


def test_a_data_folder_named_download_something_is_read_as_idx_and_the_cache_dir_holds_the_rest(
        mnist, tmp_path, monkeypatch, capsys):
    """`--data-dir downloads_mnist` is an IDX folder (no download); its test set here is 30 images the model
    gets right: one line (no errors to explain), no run folder, nothing written outside --cache-dir."""
    import numpy as np

    import bench.data.idx
    from bench.contract.oracle import Oracle
    from bench.models.train import load_or_train

    monkeypatch.setattr(bench.data.idx, "download_with_torchvision", lambda *a: pytest.fail("downloaded"))
    model, _ = load_or_train(make_config("default", cache_dir=str(tmp_path / "cache")), mnist, torch.device("cpu"),
                             progress=False)
    pred = Oracle(model, "cpu").predict(mnist.test.x[:200]).cpu()
    right = (pred == mnist.test.y[:200]).nonzero().squeeze(1)[:30]
    u8 = lambda s: (s.x[:, 0] * 255).round().to(torch.uint8).numpy()  # noqa: E731
    folder = _idx_dir(tmp_path / "work" / "downloads_mnist",
                      np.concatenate([u8(mnist.train), u8(mnist.val)]),
                      np.concatenate([mnist.train.y.numpy(), mnist.val.y.numpy()]),
                      u8(mnist.test)[right.numpy()], mnist.test.y[right].numpy())
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path / "work")
    code = main(["run", "--preset", "tiny", "--data-dir", "downloads_mnist", "--cache-dir", str(tmp_path / "cache"),
                 "--quiet", "--device", "cpu"])
    err = _one_line(capsys)
    assert code == 2 and "misclassifies none of the 30 test images" in err and str(folder.name) in err
    assert not (tmp_path / "work" / "runs").exists() and list(home.iterdir()) == []


def test_a_killed_runs_folder_is_marked_and_listed_incomplete(tmp_path, capsys):
    from bench.store import read_runs

    store = Store(tmp_path / "s.sqlite")
    store.start_run(tmp_path / "runs" / "A", {"dataset": "mnist", "model": "cnn"}, 6)  # then SIGKILL
    done = store.start_run(tmp_path / "runs" / "B", {"dataset": "mnist", "model": "cnn"}, 6)
    store.finish_run(done, "done")
    assert [r["status"][:10] for r in read_runs(store.path)] == ["incomplete", "done"]
    assert main(["runs", "--store", str(store.path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "incomplete" in lines[0] and lines[1].endswith("done")


def test_generated_every_numeric_parameter_refuses_nan_inf_and_out_of_range_values():
    """Walk every registered solver, attribution method, metric and model builder, and the run, training,
    statistics and study config: every numeric parameter documents a Range; nan, inf, -inf, 0, a negative
    and an absurd value are each accepted exactly when the range allows it, else refused in one line."""
    import inspect
    import math
    import typing

    from bench.config import AttributionConfig, CounterfactualConfig, RunConfig, StudyConfig, TrainConfig
    from bench.contract.params import ConfigError, _strip, range_of
    from bench.data import DATASETS
    from bench.models import MODELS
    from bench.validate import _call_params
    from metrics import ATTR_METRICS, CF_METRICS
    from solvers import ATTRIBUTIONS, SOLVERS

    trials = [float("nan"), float("inf"), float("-inf"), 0, -1, 10**12]
    cases = []  # (where, name, hint, try_fn)
    for reg in (SOLVERS, ATTRIBUTIONS):
        for name in reg.names():
            cls = reg.get(name)
            for key, hint in typing.get_type_hints(cls.Params, include_extras=True).items():
                cases.append((name, key, hint, lambda v, c=cls, k=key: c.param_dict(**{k: v})))
    for reg, skip in ((CF_METRICS, 2), (ATTR_METRICS, 2), (MODELS, 1)):
        for name in reg.names():
            fn = reg.get(name)
            hints = typing.get_type_hints(fn, include_extras=True)
            for p in list(inspect.signature(fn).parameters.values())[skip:]:
                if p.name in hints and p.name != "n_classes" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
                    cases.append((name, p.name, hints[p.name],
                                  lambda v, f=fn, k=p.name, r=reg, w=name: _call_params(w, f, {k: v}, r.kind)))
    for prefix, cls in (("", RunConfig), ("train.", TrainConfig), ("counterfactuals.", CounterfactualConfig),
                        ("attributions.", AttributionConfig)):
        for key, hint in typing.get_type_hints(cls, include_extras=True).items():
            cases.append(("config", prefix + key, hint, lambda v, k=prefix + key: make_config(
                "default", [f"{k}={v if not isinstance(v, float) or math.isfinite(v) else str(v).replace('inf', 'inf')}"])))
    for key, hint in typing.get_type_hints(StudyConfig, include_extras=True).items():
        cases.append(("config", f"study.{key}", hint, lambda v, k=key: make_config(
            "zoo", [f"study.{k}={[v] if k == 'seeds' else v}"])))
    numeric, tried, unranged = 0, 0, []
    for where, key, hint, try_fn in cases:
        base = _strip(hint)
        kinds = set(typing.get_args(base)) | {base}
        elem = typing.get_args(base)[0] if typing.get_origin(base) is tuple else None
        if not ({int, float} & kinds or elem in (int, float)) or bool in kinds:
            continue
        rng = range_of(hint)
        if rng is None:  # every numeric parameter documents its range beside its default
            unranged.append(f"{where}.{key}")
            continue
        numeric += 1
        for v in trials:
            lo, hi, lo_open, hi_open = rng.bounds
            inside = (isinstance(v, int) or math.isfinite(v)) and (lo < v if lo_open else lo <= v) and (
                v < hi if hi_open else v <= hi)
            if isinstance(v, float) and float not in kinds and elem is not float:
                inside = False  # an int parameter refuses a float (nan/inf are floats)
            try:
                try_fn(v)
                ok = True
            except (ConfigError, ValueError) as e:
                ok = False
                assert "\n" not in str(e) and key.split(".")[-1] in str(e), (where, key, v, str(e))
            assert ok == inside, (where, key, v, ok)
            tried += 1
    assert not unranged, f"numeric parameters without Annotated[..., Range(...)]: {', '.join(unranged)}"
    assert numeric >= 150 and tried == numeric * len(trials)
    assert DATASETS.names()  # datasets take no numeric parameters (data_dir only)
