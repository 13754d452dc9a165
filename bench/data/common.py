"""The common image set: one fixed list of test images that every model of a comparison explains.

A model's own errors differ from model to model in number and in difficulty, so scores over
them cannot be compared image by image. `rows="common"` (RunConfig.rows) explains instead the
dataset's common set, the same test images for every model, so two models' scores pair up
image by image (bench.stats.paired_pvalue) and a difference between them is the models', not
the images'.

The set (committed in `bench/data/common/<dataset>.json`, so it never moves when code or
weights change) is built by `build` from the dataset's pinned reference classifiers (listed
in the file by checkpoint path and sha256; none of them is a model the set is used to compare):

- **hard**: every test image that at least `min_wrong` (2) of the reference models
  misclassify, in test order (up to `n_hard`): the images several models get wrong;
- **stratified**: the first `per_class` (20) test images of each true class, in test order,
  that are not hard (10 classes x 20 = 200).

For each model, a row of the set the model gets wrong is explained like an error
(counterfactual toward the true class, the wrong class predicted); a row it gets right like a
correct prediction (counterfactual toward its runner-up class). errors.csv says which is which
(`pred` != `true`). Regenerate (and diff) with `python -m bench.data.common mnist`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

FOLDER = Path(__file__).resolve().parent / "common"
MIN_WRONG, N_HARD, PER_CLASS = 2, 100, 20
REFERENCES = {  # dataset -> the pinned reference classifiers (relpaths under leaderboards/weights/)
    "mnist": ("models/mnist/cnn-4b6664fa34208800.pt", "models/mnist/cnn-55688827c078fd99.pt",
              "models/mnist/cnn-27a9caa66fc5c9bd.pt", "models/mnist/resnet_cbam-459f3b28dff6f65b.pt"),
}


def path(dataset: str) -> Path:
    return FOLDER / f"{dataset}.json"


def available() -> list[str]:
    """The datasets that have a committed common set."""
    return sorted(p.stem for p in FOLDER.glob("*.json"))


def load(dataset: str) -> dict:
    """The committed common set of `dataset` (test_index, hard, recipe, references); ValueError if none."""
    p = path(dataset)
    if not p.exists():
        raise ValueError(f"rows='common': dataset {dataset!r} has no common image set "
                         f"(sets: {', '.join(available()) or 'none'}); use rows='errors' or 'correct'")
    return json.loads(p.read_text())


def indices(dataset: str):
    """The common set's test indices (ascending), as an int64 tensor."""
    import torch

    return torch.tensor(load(dataset)["test_index"], dtype=torch.long)


def reference_predictions(dataset: str, data) -> dict[str, "object"]:
    """relpath -> the pinned reference model's predicted labels on the test split (CPU)."""
    import torch

    from bench import checkpoints
    from bench.models import MODELS

    out = {}
    for rel in REFERENCES[dataset]:
        p = checkpoints.reference(rel)
        if p is None:
            raise ValueError(f"common set: reference weights {rel} are not pinned in {checkpoints.reference_dir()}")
        meta = json.loads(p.with_suffix(".json").read_text())
        torch.manual_seed(0)
        model = MODELS.get(meta["model"])(n_classes=len(data.classes), **meta["model_params"])
        checkpoints.load_into(model, p)
        model.eval()
        with torch.no_grad():
            out[rel] = torch.cat([model(xb).argmax(1) for xb in data.test.x.split(1000)])
    return out


def build(dataset: str, data) -> dict:
    """The common set from the reference models' predictions (module docstring)."""
    import torch

    from bench import checkpoints

    preds = reference_predictions(dataset, data)
    y = data.test.y
    wrong = torch.stack([p != y for p in preds.values()]).sum(0)
    hard = (wrong >= MIN_WRONG).nonzero().squeeze(1)[:N_HARD]
    rest = torch.ones_like(y, dtype=torch.bool)
    rest[hard] = False
    strat = torch.cat([(rest & (y == k)).nonzero().squeeze(1)[:PER_CLASS] for k in range(len(data.classes))])
    chosen = torch.cat([hard, strat]).sort().values
    pins = checkpoints.pinned()
    return dict(
        dataset=dataset, n=len(chosen), test_index=chosen.tolist(), hard=hard.tolist(),
        recipe=(f"hard: every test image at least {MIN_WRONG} of the {len(preds)} reference models misclassify, "
                f"in test order (at most {N_HARD}); stratified: the first {PER_CLASS} test images of each "
                "true class, in test order, that are not hard"),
        references=[dict(path=rel, sha256=pins[rel], test_errors=int((p != y).sum())) for rel, p in preds.items()],
        hard_wrong_counts=[int(wrong[i]) for i in hard.tolist()])


def main(argv: list[str]) -> int:
    from bench.data import load_dataset

    if len(argv) != 1 or argv[0] not in REFERENCES:
        print(f"usage: python -m bench.data.common {{{','.join(REFERENCES)}}}", file=sys.stderr)
        return 2
    dataset = argv[0]
    new = build(dataset, load_dataset(dataset))
    text = json.dumps(new, indent=1) + "\n"
    old = path(dataset).read_text() if path(dataset).exists() else None
    if old == text:
        print(f"{path(dataset)}: unchanged ({new['n']} images, {len(new['hard'])} hard)")
        return 0
    FOLDER.mkdir(exist_ok=True)
    path(dataset).write_text(text)
    print(f"{path(dataset)}: {'written' if old is None else 'CHANGED'} ({new['n']} images, {len(new['hard'])} hard)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
