"""How much a removal operator leaks its mask: ROAD's two checks, per operator (not a per-instance metric).

Rong et al. 2022 (ROAD, https://arxiv.org/abs/2202.00449; reference code tleemann/road_evaluation,
`experiments/cifar10/imputation_predict.py` and `mask_leakage.py`) check an operator by training
(a) an *imputation predictor*: a small per-pixel network that sees the perturbed image and says
which pixels were removed (if it can, a model can see the mask, and the mask's shape carries the
class), and (b) a classifier that predicts the class from the removal mask alone (how much class
information a mask from this ranking could carry at all). Here: (a) is a fully convolutional
detector in ROAD's shape (a 3x3 and a 1x1 sigmoid path, then two 1x1 layers; 32 channels, not
128), trained seeded with Adam on 3/4 of the images and scored on the held-out 1/4 by its
per-pixel ROC AUC (chance 0.5) and accuracy at 0.5 (chance: the share of the majority label);
(b) is a multinomial logistic regression on the flattened mask (accuracy against the majority
class's share). Masks come from a real ranking at several removal fractions; an operator that
leaves the image unchanged ("none") gives (a)'s floor for that ranking (what image content alone
says about where the ranking removes), which is exactly chance for random masks.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from metrics.operators import Operator, order_rank, remove
from metrics.road import NOISE

FRACTIONS = (0.1, 0.3, 0.5, 0.7, 0.9)


def identity(x: torch.Tensor, removed: torch.Tensor, generator=None) -> torch.Tensor:
    """The operator that removes nothing ("none"): the detector's floor."""
    return x


class Detector(nn.Module):
    """Per-pixel logit that a pixel was removed (ROAD's ImputationPredictor, smaller)."""

    def __init__(self, channels: int = 1, width: int = 32):
        super().__init__()
        self.local = nn.Conv2d(channels, width, 3, padding=1)
        self.point = nn.Conv2d(channels, width, 1)
        self.mix = nn.Conv2d(width, width, 1)
        self.out = nn.Conv2d(width, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x - 0.5
        h = torch.relu(self.local(x)) + torch.relu(self.point(x))
        return self.out(torch.relu(self.mix(h))).squeeze(1)


def masks_at(rank: torch.Tensor, fractions: Sequence[float] = FRACTIONS) -> torch.Tensor:
    """bool (N,H,W) removal masks: image i loses the first fractions[i % len] of its order.

    Args:
        rank: int64 (N,H,W), 0 = removed first (metrics.operators.order_rank viewed as images).
    """
    frac = torch.tensor([fractions[i % len(fractions)] for i in range(len(rank))], dtype=torch.float64)
    n_removed = (frac * rank[0].numel()).round().long()
    return rank < n_removed.view(-1, 1, 1).to(rank.device)


def detectability(x: torch.Tensor, removed: torch.Tensor, operator: Operator, seed: int = 0, epochs: int = 6,
                  batch_size: int = 32, lr: float = 3e-3, noise: float = NOISE) -> dict:
    """ROAD's imputation-predictor check: can a small network tell the removed pixels?

    Args:
        x: (N,C,H,W) images in [0,1]; removed: bool (N,H,W).
        operator: anything metrics.operators.remove takes ("zeros", "blur", "mean", "road", a callable).
        seed: seeds the operator's noise, the split's order and the detector.
    Returns:
        {"auc", "accuracy", "chance_accuracy", "n_train", "n_test"}: held-out per-pixel scores.
    """
    gen = torch.Generator().manual_seed(seed)
    xr = remove(x, removed, operator, noise, gen).float().cpu()
    m = removed.float().cpu()
    n_train = (3 * len(x)) // 4
    torch.manual_seed(seed)
    net = Detector(x.shape[1])
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    loss_fn = nn.BCEWithLogitsLoss()
    for _ in range(epochs):
        order = torch.randperm(n_train, generator=gen)
        for i in range(0, n_train, batch_size):
            idx = order[i:i + batch_size]
            opt.zero_grad()
            loss_fn(net(xr[idx]), m[idx]).backward()
            opt.step()
    with torch.no_grad():
        score = torch.cat([net(xr[i:i + 512]) for i in range(n_train, len(x), 512)]).flatten().numpy()
    truth = m[n_train:].flatten().numpy().astype(bool)
    from sklearn.metrics import roc_auc_score

    return {"auc": float(roc_auc_score(truth, score)), "accuracy": float(((score > 0) == truth).mean()),
            "chance_accuracy": float(max(truth.mean(), 1 - truth.mean())), "n_train": n_train,
            "n_test": len(x) - n_train}


def class_from_mask(removed: torch.Tensor, y: torch.Tensor, seed: int = 0) -> dict:
    """ROAD's mask-leakage check: held-out accuracy of a logistic regression from the mask alone to the class.

    Returns:
        {"accuracy", "chance_accuracy", "n_train", "n_test"} (chance: the majority class's share).
    """
    from sklearn.linear_model import LogisticRegression

    feats = removed.flatten(1).float().cpu().numpy()
    labels = y.cpu().numpy()
    n_train = (3 * len(feats)) // 4
    clf = LogisticRegression(max_iter=300, C=0.1, random_state=seed).fit(feats[:n_train], labels[:n_train])
    test = labels[n_train:]
    return {"accuracy": float((clf.predict(feats[n_train:]) == test).mean()),
            "chance_accuracy": float(np.bincount(test).max() / len(test)), "n_train": n_train,
            "n_test": len(test)}


def leakage_table(x: torch.Tensor, y: torch.Tensor, rank: torch.Tensor, operators: Sequence = ("none", "zeros",
                  "blur", "mean", "road"), fractions: Sequence[float] = FRACTIONS, seed: int = 0,
                  epochs: int = 6) -> list[dict]:
    """One row per operator: the detector's held-out AUC / accuracy, and class-from-mask accuracy (shared).

    Args:
        x: (N,C,H,W) images; y: (N,) their classes; rank: int64 (N,H,W) removal order (0 first).
        operators: names ("none": the unchanged image) or (label, operator) pairs.
    """
    removed = masks_at(rank, fractions)
    from_mask = class_from_mask(removed, y, seed)
    rows = []
    for op in operators:
        label, op = op if isinstance(op, tuple) else (op, op)
        det = detectability(x, removed, identity if op == "none" else op, seed, epochs=epochs)
        rows.append({"operator": label, "detector_auc": det["auc"], "detector_accuracy": det["accuracy"],
                     "detector_chance": det["chance_accuracy"], "class_from_mask": from_mask["accuracy"],
                     "class_chance": from_mask["chance_accuracy"], "n_test": det["n_test"]})
    return rows


BOARD_IMAGES, BOARD_EPOCHS = 500, 4  # test images the board's leakage table uses (masks: the model's saliency, MoRF)
BOARD_OPERATORS = ("none", "zeros", "blur", "mean", "road")


def board_leakage(ctx, n: int = BOARD_IMAGES, seed: int = 0, epochs: int = BOARD_EPOCHS) -> dict:
    """The leakage table a board prints beside its removal columns, for the run's model and data.

    Masks: MoRF removal of the first `n` test images by the model's own saliency for its predicted
    class, at 10..90% (image i gets FRACTIONS[i % 5]); the detector trained on 3/4, scored on 1/4.
    Cached as JSON under <cache_dir>/leakage/<dataset>/ by the model's weights hash.

    Returns:
        {"images", "ranking", "fractions", "rows": leakage_table's rows, "least_leaking"} where
        "least_leaking" is the removing operator with the lowest detector AUC.
    """
    import json
    from pathlib import Path

    from solvers import ATTRIBUTIONS

    path = (Path(ctx.cache_dir).expanduser() / "leakage" / ctx.dataset
            / f"{(ctx.model_sha256 or 'unpinned')[:16]}-n{n}-e{epochs}-s{seed}.json")
    if ctx.model_sha256 and path.exists():
        return json.loads(path.read_text())
    x = ctx.data.test.x[:n].to(getattr(ctx.oracle, "device", "cpu"))
    y = ctx.data.test.y[:n]
    pred = ctx.oracle.probs(x).argmax(1)
    attr = ATTRIBUTIONS.get("saliency")(ctx.oracle)(x, pred, None).attr.detach().cpu()
    rank = order_rank(attr, "morf").view(len(x), *x.shape[2:])
    rows = leakage_table(x.cpu(), y, rank, BOARD_OPERATORS, FRACTIONS, seed, epochs)
    removing = [r for r in rows if r["operator"] != "none"]
    out = dict(images=len(x), epochs=epochs, ranking="saliency of the predicted class, MoRF", fractions=list(FRACTIONS),
               seed=seed, rows=rows, least_leaking=min(removing, key=lambda r: r["detector_auc"])["operator"])
    if ctx.model_sha256:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=1))
    return out

