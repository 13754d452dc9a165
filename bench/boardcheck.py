"""A board folder read back is checked against its own provenance before anything uses it.

Every reader of boards (`bench.load`, `bench report`, `bench check`, `bench site`, `bench meta`)
calls `check_board` first. It compares what the files hold with what the provenance JSON
(`<stem>.json`) says was written:

- each leaderboard table (`<stem>.csv`) parses, has the key columns (method, mode, n) and one
  row per provenance entry (method, mode), with the entry's n;
- the per-instance table (`<stem>_instances.csv`) has n rows per entry, on errors of the manifest;
- the artifacts (`<stem>_artifacts.npz`) hold one array per entry (n rows) plus the error images;
- the error manifest (`errors.csv`) has the recorded number of rows and hashes (with the
  model's weights hash) to the recorded manifest sha256;
- the folder holds no INCOMPLETE marker (a run that never finished).

The check is generic: it knows the key columns and the provenance, never a list of metric or
statistic columns, so a board with more columns or more tables still passes. A mismatch is one
BoardError line naming the file and what to do. Reads only.
"""

from __future__ import annotations

import math
import zipfile
import zlib
from collections import Counter
from pathlib import Path

from bench import board
from bench.board import RESTORE, BoardError, manifest_hash, read_csv, read_instances, read_json, read_table

KEY_COLUMNS = ("method", "mode", "n")
INSTANCE_COLUMNS = ("method", "mode", "test_index")
MASK_ARRAY = "errors_mask"  # the rows' ground-truth masks, on boards of a controlled set (bench.data.controlled)
ERROR_ARRAYS = ("errors", "errors_index", "errors_true", "errors_pred")
INCOMPLETE = "INCOMPLETE"  # bench.publish writes it into a run folder until the run finishes


def _key(method, mode) -> tuple[str, str]:
    mode = "" if mode is None or (isinstance(mode, float) and math.isnan(mode)) else str(mode)
    return str(method), mode


def _entries(prov: dict, path: Path) -> Counter:
    entries = prov.get("entries")
    if not isinstance(entries, list) or not all(isinstance(e, dict) and "method" in e for e in entries):
        raise BoardError(f"{path}: no list of entries (key 'entries'); {RESTORE}")
    return Counter(_key(e["method"], e.get("mode")) for e in entries)


def _entry_n(prov: dict) -> dict[tuple[str, str], int]:
    return {_key(e["method"], e.get("mode")): e.get("n") for e in prov["entries"]}


def _show(keys) -> str:
    return ", ".join(f"{m}{'/' + mode if mode else ''}" for m, mode in sorted(keys))[:120]


def _table(folder: Path, t: board.Table, prov: dict, prov_path: Path) -> None:
    path = t.csv(folder)
    df = read_table(path)
    missing = [c for c in KEY_COLUMNS if c not in df.columns]
    if missing:
        raise BoardError(f"{path}: no column {missing[0]!r} (a leaderboard has {', '.join(KEY_COLUMNS)}); {RESTORE}")
    rows = Counter(_key(m, mode) for m, mode in zip(df["method"], df["mode"]))
    want = _entries(prov, prov_path)
    if rows != want:
        lost, extra = want - rows, rows - want
        what = (f"{sum(lost.values())} row(s) missing ({_show(lost)})" if lost else "") + \
               ("; " if lost and extra else "") + (f"{sum(extra.values())} row(s) not in it ({_show(extra)})"
                                                   if extra else "")
        raise BoardError(f"{path} has {len(df)} rows but its provenance {prov_path.name} lists {sum(want.values())} "
                         f"entries: {what}; {RESTORE}")
    n = _entry_n(prov)
    for m, mode, got in zip(df["method"], df["mode"], df["n"]):
        want_n = n[_key(m, mode)]
        if want_n is not None and str(got) != str(want_n):
            raise BoardError(f"{path}: row {_show([_key(m, mode)])} says n = {got} but {prov_path.name} says "
                             f"{want_n}; {RESTORE}")


def _instances(folder: Path, t: board.Table, prov: dict, manifest: set[int] | None) -> None:
    path = t.instances(folder)
    if not path.exists():
        return
    df = read_instances(path)
    missing = [c for c in INSTANCE_COLUMNS if c not in df.columns]
    if missing:
        raise BoardError(f"{path}: no column {missing[0]!r}; {RESTORE}")
    got = Counter(_key(m, mode) for m, mode in zip(df["method"], df["mode"]))
    for key, n in _entry_n(prov).items():
        if n is not None and got.get(key, 0) != n:
            raise BoardError(f"{path}: {got.get(key, 0)} rows for {_show([key])} but its provenance says n = {n}; "
                             f"{RESTORE}")
    extra = set(got) - set(_entry_n(prov))
    if extra:
        raise BoardError(f"{path}: rows of {_show(extra)}, which its provenance does not list; {RESTORE}")
    if manifest is not None:
        try:
            index = {int(t) for t in df["test_index"]}
        except (TypeError, ValueError):
            raise BoardError(f"{path}: a test_index that is not an integer; {RESTORE}") from None
        stray = sorted(index - manifest)
        if stray:
            raise BoardError(f"{path}: test index {stray[0]} is not an error of errors.csv; {RESTORE}")


def _npz_shapes(path: Path) -> dict[str, tuple]:
    """name -> shape of every array in an .npz; every member is CRC-checked first (a damaged stream is named)."""
    import numpy as np

    shapes = {}
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()  # every member decompressed and CRC-checked (a 3 MB board: 0.06 s)
            if bad is not None:
                raise zipfile.BadZipFile(f"member {bad} fails its CRC check")
            for name in z.namelist():
                with z.open(name) as f:
                    version = np.lib.format.read_magic(f)
                    shape = (np.lib.format.read_array_header_1_0(f) if version == (1, 0)
                             else np.lib.format.read_array_header_2_0(f))[0]
                shapes[name[:-4] if name.endswith(".npy") else name] = shape
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zipfile.LargeZipFile, KeyError, zlib.error) as e:
        raise BoardError(f"{path}: not a readable .npz archive ({type(e).__name__}: {str(e)[:80]}); "
                         f"{RESTORE}") from None
    return shapes


def _artifacts(folder: Path, t: board.Table, prov: dict, n_errors: int | None) -> None:
    path = t.artifacts(folder)
    if not path.exists():
        return
    shapes = _npz_shapes(path)
    for (method, mode), n in _entry_n(prov).items():
        name = f"{method}|{mode}"
        if name not in shapes:
            raise BoardError(f"{path}: no array {name!r} for entry {_show([(method, mode)])}; {RESTORE}")
        if n is not None and (not shapes[name] or shapes[name][0] != n):
            raise BoardError(f"{path}: array {name!r} has {shapes[name][:1]} rows, its provenance says n = {n}; "
                             f"{RESTORE}")
    for name in ERROR_ARRAYS:
        if name not in shapes:
            raise BoardError(f"{path}: no array {name!r}; {RESTORE}")
        if n_errors is not None and shapes[name][:1] != (n_errors,):
            raise BoardError(f"{path}: array {name!r} has {shapes[name][:1]} rows, the provenance says "
                             f"{n_errors} errors; {RESTORE}")
    if MASK_ARRAY in shapes and shapes[MASK_ARRAY][:1] != shapes.get(ERROR_ARRAYS[0], (None,))[:1]:
        raise BoardError(f"{path}: array {MASK_ARRAY!r} has {shapes[MASK_ARRAY][:1]} rows, not one per error; {RESTORE}")
    extra = sorted(set(shapes) - {*ERROR_ARRAYS, MASK_ARRAY} - {f"{m}|{mode}" for m, mode in _entry_n(prov)})
    if extra:
        raise BoardError(f"{path}: array {extra[0]!r} belongs to no entry of its provenance; {RESTORE}")


def _manifest(folder: Path, prov: dict, prov_path: Path) -> set[int] | None:
    """Check errors.csv against the recorded manifest hash; returns its test indices (None without one)."""
    errors, model = prov.get("errors") or {}, prov.get("model") or {}
    recorded, weights = errors.get("manifest_sha256"), model.get("weights_sha256")
    path = folder / board.MANIFEST
    if not path.exists():
        if recorded:
            raise BoardError(f"{folder}: no {board.MANIFEST}, the error manifest whose hash {prov_path.name} records; "
                             f"{RESTORE}")
        return None
    df = read_csv(path)
    missing = [c for c in ("test_index", "true", "pred") if c not in df.columns]
    if missing:
        raise BoardError(f"{path}: no column {missing[0]!r} (an error manifest has position, test_index, true, "
                         f"pred); {RESTORE}")
    if errors.get("n") is not None and len(df) != errors["n"]:
        raise BoardError(f"{path} has {len(df)} errors but {prov_path.name} records {errors['n']}; {RESTORE}")
    if recorded and weights:
        import numpy as np

        try:
            cols = [np.asarray(df[c], dtype=np.int64) for c in ("test_index", "true", "pred")]
        except (TypeError, ValueError):
            raise BoardError(f"{path}: a value that is not an integer; {RESTORE}") from None
        got = manifest_hash(*cols, weights, errors.get("rows", "errors"))
        if got != recorded:
            raise BoardError(f"{path} does not match the manifest sha256 of {prov_path.name} ({got[:12]} vs "
                             f"{recorded[:12]}): the error set was edited; {RESTORE}")
    return {int(t) for t in df["test_index"]}


def check_board(folder: str | Path, full: bool = False) -> list[str]:
    """Check a board folder against its provenance (see the module docstring); returns the stems checked.

    Args:
        folder: a board or run folder.
        full: also require everything a rerun compares (`bench check --board`): a provenance JSON
            beside every table, and the error manifest.
    Raises:
        BoardError: one line naming the file that does not match, and what to do.
    """
    folder = Path(folder)
    if (folder / INCOMPLETE).exists():
        raise BoardError(f"{folder / INCOMPLETE}: the run writing this folder never finished (killed or failed), "
                         "its tables may be partial; rerun the same command to finish it")
    checked, hashes = [], {}
    for t in board.TABLES:
        csv, js = t.csv(folder), t.json(folder)
        if not csv.exists() and not js.exists():
            continue
        if not js.exists():
            if full or t.instances(folder).exists():
                raise BoardError(f"{folder}: {csv.name} has no provenance {js.name} to check it against; "
                                 f"{RESTORE}")
            checked.append(t.stem)
            continue
        prov = read_json(js)
        if not csv.exists():
            raise BoardError(f"{folder}: {js.name} lists entries but {csv.name} is missing; {RESTORE}")
        _table(folder, t, prov, js)
        manifest = _manifest(folder, prov, js)
        n_errors = (prov.get("errors") or {}).get("n")
        _instances(folder, t, prov, manifest)
        _artifacts(folder, t, prov, n_errors)
        hashes[t.stem] = (prov.get("errors") or {}).get("manifest_sha256")
        checked.append(t.stem)
    if len({h for h in hashes.values()}) > 1:
        raise BoardError(f"{folder}: counterfactuals.json and attributions.json record different error manifests; "
                         f"{RESTORE}")
    return checked
