"""Publishing a study in sittings: a cell whose published board is finished, from the same config and
the same checkpoint file, is kept as it is instead of being explained again.

A long study (the zoo: 144 cells) is published over several sessions, each on a machine that may
be new, so it cannot resume from the local store alone. It resumes from what is committed: each
published cell's `cell.json` (written last, so its presence means the cell finished) records
`identity`, a hash of everything its numbers depend on: the cell's config without what only says
where or how it ran (preset name, device, folders, publish flags, the study table) and the sha256
of the checkpoint file it explained (the pinned weights, so a re-pinned model is explained again).
A kept cell's boards are as its own sitting's commit made them; its provenance says which. This
module imports no torch.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

# config keys that do not change a cell's numbers (where and how it ran)
WHERE = ("preset", "device", "out", "publish", "force", "cache_dir", "retrain", "data_dir", "store", "study")


def identity(cfg) -> str | None:
    """The hash of a cell's config and its checkpoint file; None while the checkpoint is neither pinned nor cached."""
    from bench import checkpoints
    from bench.models.train import checkpoint_relpath

    rel = checkpoint_relpath(cfg)[0]
    path, _ = checkpoints.locate(rel, cfg.cache_dir, use_reference=not cfg.retrain)
    if not path.exists():
        return None
    parts = {k: v for k, v in cfg.to_dict().items() if k not in WHERE}
    parts["checkpoint"] = dict(relpath=rel, sha256=checkpoints.file_sha256(path))
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def finished(cfg, folder: Path) -> bool:
    """Does `folder` hold this cell's finished board, made from the same config and checkpoint file?"""
    summary = Path(folder) / "cell.json"
    if not summary.is_file():
        return False
    try:
        recorded = json.loads(summary.read_text()).get("identity")
    except (OSError, ValueError):
        return False
    return recorded is not None and recorded == identity(cfg)
