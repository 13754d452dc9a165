"""What publishing a board adds (pinned weights), what it refuses, and every board's error manifest.

(Where a run's tables go, runs/ or leaderboards/, is bench/folders.py.) `--publish` refuses
`--limit` runs and runs from a checkout with uncommitted code (unless `--force`), and
pins every checkpoint the tables came from (the classifier, the plausibility autoencoders and
the second classifier) under `leaderboards/weights/` with its sha256 in `SHA256SUMS`. Every
run folder, published or not, gets `errors.csv`: the error manifest (test index, true label,
predicted label) whose hash the provenance records.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from bench import atomic, checkpoints

log = logging.getLogger("bench")


def refuse_unpublishable(cfg) -> None:
    """A --publish run that would publish what it should not: one-line error before any work."""
    if not cfg.publish:
        return
    if cfg.limit is not None:
        raise ValueError("--publish refuses --limit runs (a published board covers the whole error set)")
    from bench.provenance import git_state

    if git_state().get("dirty") and not cfg.force:
        raise ValueError("--publish refuses a checkout with uncommitted code changes (commit first, "
                         "or pass --force and own it)")


def write_manifest(errors, folder: Path) -> Path:
    """errors.csv: position, test_index, true, pred of every row the tables explain (+ target on correct rows)."""
    rows = errors.manifest()
    extra = ["target"] if rows and "target" in rows[0] else []  # correct-prediction rows: the runner-up class
    lines = [",".join(["position", "test_index", "true", "pred", *extra])] + [
        ",".join(map(str, [i, r["test_index"], r["true"], r["pred"], *(r[k] for k in extra)]))
        for i, r in enumerate(rows)]
    from bench.board import MANIFEST

    return atomic.write_text(folder / MANIFEST, "\n".join(lines) + "\n")


def used_checkpoints(ctx) -> list[dict]:
    """Metadata of every trained resource this run loaded (model first), each with relpath and source."""
    metas = [ctx.model_meta]
    for value in ctx.metric_ctx.memo.values():
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], dict) and "relpath" in value[1]:
            metas.append(value[1])
    return [m for m in metas if "relpath" in m]


def pin_weights(metas: list[dict], rescore=None) -> list[Path]:
    """Copy each checkpoint not yet pinned into the reference weights and record its sha256.

    With `rescore` (state dict -> test accuracy) each is pinned in float16 instead (bench train
    --pin with study.pin_dtype = "float16": half the bytes; loading casts back to float32): its
    sidecar's test_accuracy becomes the rounded weights' own, the trained one kept as
    test_accuracy_float32, so a board made from the pinned file reports what that file scores.
    """
    root = checkpoints.reference_dir()
    pins = checkpoints.pinned(root)
    written = []
    for m in metas:
        rel, src = m["relpath"], Path(m["checkpoint"])
        if m.get("source") == "reference":
            continue
        dest = root / rel
        if rel in pins:
            log.warning("replacing reference weights %s (boards made with the old ones must be republished)", dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if rescore is None:
            for suffix in (".pt", ".json"):
                shutil.copyfile(src.with_suffix(suffix), dest.with_suffix(suffix))
        else:
            _pin_half(src, dest, rescore)
        pins[rel] = checkpoints.file_sha256(dest)
        written += [dest, dest.with_suffix(".json")]
        log.info("pinned reference weights %s (sha256 %s)", dest, pins[rel][:12])
    if written:
        atomic.write_text(root / checkpoints.SUMS, "".join(f"{d}  {r}\n" for r, d in sorted(pins.items())))
    return written


def _pin_half(src: Path, dest: Path, rescore) -> None:
    """The checkpoint at src rounded to float16 (integer buffers kept) at dest, its sidecar rescored."""
    import torch

    state, meta = checkpoints.load(src)
    half = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    bad = checkpoints.non_finite(half)
    if bad:  # a weight beyond float16's range: pin it in float32 (study.pin_dtype)
        raise checkpoints.CheckpointError(f"{src} does not fit float16 ({bad}); set study.pin_dtype = \"float32\"")
    meta = dict(meta, stored_dtype="float16", test_accuracy_float32=meta.get("test_accuracy"),
                test_accuracy=rescore(half))
    atomic.write_with(dest, lambda f: torch.save(half, f))
    atomic.write_json(dest.with_suffix(".json"), meta, sort_keys=False)
