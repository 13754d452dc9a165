"""The error set: the model's misclassified test images, with a hashed manifest.

Manifest rows are (test index, true label, predicted label) in test-set order. Its hash
covers the manifest and the model weights' hash, so a leaderboard row can be traced to
exactly the images and the model it was computed on. The counterfactual target of an
error is its true label: a solver must flip the error back.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import torch

from bench.contract.oracle import Oracle


@dataclass(frozen=True)
class ErrorSet:
    index: torch.Tensor  # int64 (N,) positions in the test split
    x: torch.Tensor  # float32 (N,1,28,28)
    true: torch.Tensor  # int64 (N,) = counterfactual target
    pred: torch.Tensor  # int64 (N,) the model's wrong prediction
    n_test: int
    manifest_hash: str
    limited: bool = False  # True when --limit cut the set (not for publication)

    def __len__(self) -> int:
        return len(self.index)

    def position(self, test_index: torch.Tensor) -> torch.Tensor:
        """Positions in this error set of the given test-set indices."""
        lookup = {int(t): i for i, t in enumerate(self.index.tolist())}
        return torch.tensor([lookup[int(t)] for t in test_index.tolist()], dtype=torch.long)

    def manifest(self) -> list[dict]:
        return [dict(test_index=i, true=t, pred=p)
                for i, t, p in zip(self.index.tolist(), self.true.tolist(), self.pred.tolist())]


def manifest_hash(index, true, pred, weights_sha256: str) -> str:
    blob = json.dumps(dict(rows=list(zip(index.tolist(), true.tolist(), pred.tolist())),
                           weights=weights_sha256), separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def collect_errors(oracle: Oracle, x: torch.Tensor, y: torch.Tensor, weights_sha256: str,
                   limit: int | None = None) -> ErrorSet:
    """Misclassified rows of (x, y), batched on the oracle's device; `limit` keeps the first N.

    The hash is computed over the full error set, then again over the kept rows when limited.
    """
    oracle.start(0)
    pred = oracle.predict(x).cpu()
    wrong = (pred != y).nonzero().squeeze(1)
    limited = limit is not None and limit < len(wrong)
    if limited:
        if limit < 1:
            raise ValueError(f"--limit must be >= 1, got {limit}")
        wrong = wrong[:limit]
    h = manifest_hash(wrong, y[wrong], pred[wrong], weights_sha256)
    return ErrorSet(wrong, x[wrong].clone(), y[wrong].clone(), pred[wrong].clone(), len(y), h, limited)
