"""`bench train`: train (or load) a run's classifier, or every checkpoint of a study's cells.

bench.cli parses the command line and validates the config, then calls `train` here.
"""

from __future__ import annotations


def train(cfg, args) -> int:
    """`bench train`: the configured classifier, or every cell's of a study (then --pin pins each)."""
    from bench.cell import resolve_device
    from bench.data import load_dataset
    from bench.models.train import load_or_train

    if cfg.study is not None:
        return train_study(cfg, args)
    if args.pin:
        from bench.contract.params import ConfigError

        raise ConfigError("--pin pins a study's checkpoints; a plain run pins its model with `bench run --publish`")
    device = resolve_device(cfg.device)
    model, meta = load_or_train(cfg, load_dataset(cfg.dataset, cfg.data_dir, cfg.cache_dir), device,
                                progress=not args.quiet, force=args.force)
    from bench.atomic import dumps

    print(dumps({k: meta[k] for k in ("test_accuracy", "val_accuracy", "train_seconds", "cached",
                                           "checkpoint", "weights_sha256") if k in meta}, indent=2))
    return 0


def train_study(cfg, args) -> int:
    """Train (or load) every checkpoint of a study's cells, one JSON line each; --pin pins each at once.

    Each cell trains as its train unit would (study.threads torch threads, the cell's own config),
    so a study run later finds the checkpoint (cached, or pinned with --pin) and trains nothing.
    """
    import torch

    from bench.atomic import dumps
    from bench.cell import resolve_device
    from bench.data import load_dataset
    from bench.models.train import checkpoint_relpath, load_or_train
    from bench.publish import pin_weights
    from bench.study.cells import cells

    device, seen = resolve_device(cfg.device), set()
    torch.set_num_threads(cfg.study.threads)
    for cell in cells(cfg):
        rel = checkpoint_relpath(cell.cfg)[0]
        if rel in seen:  # another row kind of the same (model, seed)
            continue
        seen.add(rel)
        data = load_dataset(cell.cfg.dataset, cell.cfg.data_dir, cell.cfg.cache_dir)
        model, meta = load_or_train(cell.cfg, data, device, progress=not args.quiet, force=args.force)
        rescore = _rescorer(model, data, device) if cfg.study.pin_dtype == "float16" else None
        pinned = [p for p in pin_weights([meta], rescore) if p.suffix == ".pt"] if args.pin else []
        if pinned and rescore is not None:  # the float16 file's own accuracy
            import json

            meta = dict(meta, pinned_test_accuracy=json.loads(pinned[0].with_suffix(".json").read_text())["test_accuracy"])
        keys = ("test_accuracy", "val_accuracy", "steps", "epochs", "stop", "train_seconds", "train_cpu_seconds",
                "source", "relpath", "pinned_test_accuracy")
        print(dumps(dict(cell=f"{cell.dataset}/{cell.label}-seed{cell.seed}", **{k: meta[k] for k in keys if k in meta},
                         pinned=bool(pinned))), flush=True)
    return 0


def _rescorer(model, data, device):
    """state dict -> the test accuracy of `model` holding it (a float16 pin's own accuracy)."""
    import copy

    from bench.models.train import accuracy

    model = copy.deepcopy(model)  # the trained one stays as it is

    def rescore(state: dict) -> float:
        model.load_state_dict(state)  # casts each tensor to the model's float32
        return accuracy(model, data.test.x, data.test.y, device)

    return rescore
