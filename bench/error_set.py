"""The rows a board explains: the model's misclassified test images (or a sample of correct ones), hashed.

Manifest rows are (test index, true label, predicted label) in test-set order. Its hash
covers the manifest and the model weights' hash, so a leaderboard row can be traced to
exactly the images and the model it was computed on. The counterfactual target of an
error is its true label: a solver must flip the error back.

`rows="correct"` (RunConfig.rows) explains correctly classified images instead: a fixed
stratified sample, the first n_correct / n_classes correct images of each class in test order
(fewer where a class has fewer). Their counterfactual target is the model's runner-up class
(the second-highest logit), so a solver moves a correct prediction across its nearest boundary.
`rows="common"` explains the dataset's common image set (bench.data.common), the same test
images for every model: a row the model gets wrong is explained like an error (target: the
true class), a row it gets right like a correct one (target: the runner-up class).
Their hash adds the row kind, so the kinds never share store entries. On data with a
ground-truth mask (bench.data.controlled) the set carries each row's mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bench.board import manifest_hash
from bench.contract.oracle import Oracle


@dataclass(frozen=True)
class ErrorSet:
    index: torch.Tensor  # int64 (N,) positions in the test split
    x: torch.Tensor  # float32 (N,1,28,28)
    true: torch.Tensor  # int64 (N,) = counterfactual target
    pred: torch.Tensor  # int64 (N,) the model's prediction (wrong on an error row)
    n_test: int
    manifest_hash: str
    limited: bool = False  # True when --limit cut the set (not for publication)
    target: torch.Tensor | None = None  # int64 (N,) the counterfactual target; None: `true`
    mask: torch.Tensor | None = None  # bool like x: the pixels that carry the label; None without one
    rows: str = "errors"  # "errors" | "correct" | "common" (bench.config.ROWS)

    def __post_init__(self) -> None:
        if self.target is None:
            object.__setattr__(self, "target", self.true)

    def __len__(self) -> int:
        return len(self.index)

    def position(self, test_index: torch.Tensor) -> torch.Tensor:
        """Positions in this error set of the given test-set indices."""
        lookup = {int(t): i for i, t in enumerate(self.index.tolist())}
        return torch.tensor([lookup[int(t)] for t in test_index.tolist()], dtype=torch.long)

    def mask_at(self, pos: torch.Tensor, device) -> torch.Tensor | None:
        """The ground-truth masks of rows `pos` on `device` (None when the data has none)."""
        return None if self.mask is None else self.mask[pos].to(device)

    def manifest(self) -> list[dict]:
        rows = [dict(test_index=i, true=t, pred=p)
                for i, t, p in zip(self.index.tolist(), self.true.tolist(), self.pred.tolist())]
        if self.rows != "errors":
            for r, t in zip(rows, self.target.tolist()):
                r["target"] = t
        return rows

    def describe(self) -> str:
        """What the rows are, for the notes under a board."""
        if self.rows == "errors":
            return f"{len(self)} misclassified test images of {self.n_test}"
        if self.rows == "correct":
            return (f"{len(self)} correctly classified test images of {self.n_test} (a stratified sample: the first "
                    "of each class in test order; no errors), counterfactuals toward each one's runner-up class")
        wrong = int((self.pred != self.true).sum())
        return (f"the {len(self)} test images of the common set (bench.data.common: images several reference models "
                f"get wrong, and the first of each class), {wrong} of them errors of this model (counterfactuals "
                f"toward the true class), {len(self) - wrong} correct (toward the runner-up class)")


def collect_errors(oracle: Oracle, x: torch.Tensor, y: torch.Tensor, weights_sha256: str,
                   limit: int | None = None, mask: torch.Tensor | None = None, rows: str = "errors",
                   n_correct: int = 100, common: torch.Tensor | None = None) -> ErrorSet:
    """The rows to explain of (x, y), batched on the oracle's device; `limit` keeps the first N.

    rows "errors": the misclassified rows; "correct": the stratified sample of correct ones
    (module docstring); "common": the test indices `common` (bench.data.common.indices).
    `mask`: bool like x, the ground truth, kept for the chosen rows.
    The hash is computed over the full set, then again over the kept rows when limited.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be >= 1, got {limit}")
    oracle.start(0)
    logits = oracle.logits(x).cpu()
    pred = logits.argmax(1)
    if rows == "errors":
        chosen, target = (pred != y).nonzero().squeeze(1), y
    elif rows == "correct":
        chosen, target = correct_sample(pred, y, n_correct), logits.topk(2, dim=1).indices[:, 1]
    elif rows == "common":
        if common is None:
            raise ValueError("rows 'common' needs the common set's test indices (bench.data.common.indices)")
        chosen = common.sort().values
        if len(chosen) and int(chosen[-1]) >= len(y):
            raise ValueError(f"the common set names test image {int(chosen[-1])} but this test split has {len(y)}: "
                             "it is made for the dataset's shipped test split")
        target = torch.where(pred == y, logits.topk(2, dim=1).indices[:, 1], y)
    else:
        raise ValueError(f"unknown rows {rows!r} (errors | correct | common)")
    limited = limit is not None and limit < len(chosen)
    if limited:
        chosen = chosen[:limit]
    h = manifest_hash(chosen, y[chosen], pred[chosen], weights_sha256, rows)
    return ErrorSet(chosen, x[chosen].clone(), y[chosen].clone(), pred[chosen].clone(), len(y), h, limited,
                    target[chosen].clone(), None if mask is None else mask[chosen].clone(), rows)


def correct_sample(pred: torch.Tensor, y: torch.Tensor, n: int) -> torch.Tensor:
    """Test indices (ascending) of the first ceil(n / classes) correct predictions of each true class."""
    classes = int(y.max()) + 1
    per = -(-n // classes)
    right = pred == y
    picked = [(right & (y == k)).nonzero().squeeze(1)[:per] for k in range(classes)]
    return torch.cat(picked).sort().values
