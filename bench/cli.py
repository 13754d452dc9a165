"""Command line: `python -m bench {run,train,list,check,report}`.

This module imports no torch or TensorFlow at start-up: `--help` and `list` stay instant.
Bad input (unknown preset, key, name or device) is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="default", help="preset name (bench/presets) or a .toml path")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, dotted (repeatable), e.g. --set train.epochs=5")
    p.add_argument("--device", default=None, help="auto | cpu | cuda (default: the preset's, auto)")
    p.add_argument("--limit", type=int, default=None, help="only the first N errors (not for publication)")
    p.add_argument("--out", default=None, help="root folder of the tables (default: runs/<dataset>/<model>/<time>/; "
                   "leaderboards/ with --publish)")
    p.add_argument("--cache-dir", default=None, help="models, data and run store (default: ~/.cache/bench)")
    p.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")
    p.add_argument("--retrain", action="store_true", default=None,
                   help="ignore the shipped reference weights (leaderboards/weights): use or train "
                        "checkpoints of this machine")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench", description="How well do explanation methods explain "
                                     "an image classifier's mistakes? Counterfactual and attribution leaderboards.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="train/load the model, explain its errors, write leaderboards")
    _common(p_run)
    p_run.add_argument("--publish", action="store_true", default=None,
                       help="write leaderboards/<dataset>/<model>/ (not runs/) and pin the weights used")
    p_run.add_argument("--force", action="store_true", default=None,
                       help="with --publish: publish from a checkout with uncommitted code anyway")
    p_train = sub.add_parser("train", help="train (or load from cache) the configured classifier")
    _common(p_train)
    p_train.add_argument("--force", action="store_true", help="retrain even when a checkpoint is cached")
    p_list = sub.add_parser("list", help="list presets, datasets, models, solvers, attributions, metrics")
    p_list.add_argument("what", nargs="?", default="all")
    p_check = sub.add_parser("check", help="run the ci preset and compare with committed baselines")
    _common(p_check)
    p_check.add_argument("--baseline", default="leaderboards/ci", help="baseline folder")
    p_check.add_argument("--board", default=None,
                         help="verify a fresh run of a published board's own config against it "
                              "(e.g. leaderboards/mnist/cnn); replaces --preset and --baseline")
    p_check.add_argument("--update", action="store_true", help="rewrite the baselines deliberately")
    p_check.set_defaults(preset="ci")
    p_report = sub.add_parser("report", help="build one Markdown report from a leaderboard folder")
    p_report.add_argument("folder", help="e.g. leaderboards/mnist/cnn")
    p_site = sub.add_parser("site", help="build the static leaderboard site (plain files) from every board folder")
    p_site.add_argument("--root", default="leaderboards", help="folder holding the boards (default: leaderboards)")
    p_site.add_argument("--out", default=None, help="output folder (default: <root>/site)")
    return parser


def _config(args):
    from bench.config import make_config

    return make_config(args.preset, args.overrides, device=args.device, limit=args.limit,
                       out=args.out, cache_dir=args.cache_dir, retrain=args.retrain,
                       publish=getattr(args, "publish", None), force=getattr(args, "force", None))


def cmd_list(what: str) -> int:
    from bench.config import preset_names
    from bench.data import DATASETS
    from bench.models import MODELS
    from metrics import ATTR_METRICS, CF_METRICS
    from solvers import ATTRIBUTIONS, SOLVERS

    groups = {"datasets": DATASETS, "models": MODELS, "solvers": SOLVERS, "attributions": ATTRIBUTIONS,
              "cf_metrics": CF_METRICS, "attr_metrics": ATTR_METRICS}
    if what not in ("all", "presets", *groups):
        raise ValueError(f"unknown list {what!r} (all | presets | {' | '.join(groups)})")
    if what in ("all", "presets"):
        print("presets:\n" + "\n".join(f"  {n}" for n in preset_names()))
    for title, reg in groups.items():
        if what in ("all", title):
            print(f"{title}:")
            for e in reg.entries():
                print(f"  {e.name:<22} {e.summary}")
    return 0


def main(argv: list[str] | None = None) -> int:
    # Quantus and alibi import TensorFlow, which logs cuDNN/cuFFT "factory already registered"
    # at ERROR level when torch came first; BENCH_DEBUG=1 keeps TensorFlow's own setting.
    if not os.environ.get("BENCH_DEBUG"):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # OpenMP threads that finish a parallel region sleep instead of spinning (read when torch
    # first loads, which is below): spinning threads of one team steal the cores the alibi
    # worker and the other team need when solvers run side by side (see bench/runner.py).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    args = build_parser().parse_args(argv)
    _logging(getattr(args, "quiet", False))
    log = logging.getLogger("bench")
    try:
        return _dispatch(args)
    finally:  # in-process callers (tests, notebooks) get the logger back as it was
        log.handlers[:] = [h for h in log.handlers if not isinstance(h, _StderrHandler)]
        log.propagate = True
        log.setLevel(logging.NOTSET)
        from bench.progress import set_enabled

        set_enabled(True)


def _dispatch(args) -> int:
    try:
        if args.command == "list":
            return cmd_list(args.what)
        if args.command == "report":
            from bench.report.document import build_report

            print(build_report(args.folder))
            return 0
        if args.command == "site":
            from bench.site import build_site

            print(json.dumps(build_site(args.root, args.out)))
            return 0
        cfg = _config(args)
        from bench.api.memory import keep_freed_memory

        keep_freed_memory()  # steady forward speed after training in-process (see bench/api/memory.py)
        if args.command == "train":
            return _train(cfg, args)
        if args.command == "check":
            from bench.check import board_config, check

            if args.board:
                cfg, args.baseline = board_config(args.board, cfg), args.board
            return check(cfg, args.baseline, update=args.update, progress=not args.quiet)
        from bench.leaderboard import headline
        from bench.runner import run

        summary = run(cfg, progress=not args.quiet)
        print(headline(summary["folder"]))
        print(f"\n{summary['n_errors']} errors, {summary['seconds']:.0f} s; tables, figures and provenance in "
              f"{summary['folder']}")
        return 0
    except KeyboardInterrupt:
        print("bench: interrupted (finished work is kept in the run store)", file=sys.stderr)
        return 130
    except (ValueError, TypeError, KeyError, FileNotFoundError, RuntimeError) as e:
        if os.environ.get("BENCH_DEBUG"):
            raise
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"bench: error: {msg}", file=sys.stderr)
        return 2


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time of each message (pytest swaps it per test)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


class _Formatter:
    """`bench: message`, and `bench: WARNING: message` for warnings and errors."""

    def format(self, record) -> str:
        level = "" if record.levelno < 30 else f"{record.levelname}: "
        return f"bench: {level}{record.getMessage()}"


def _logging(quiet: bool) -> None:
    """Messages and warnings on stderr as `bench: ...`; --quiet keeps warnings and errors only."""
    from bench.progress import set_enabled

    set_enabled(not quiet)
    handler = _StderrHandler()
    handler.setFormatter(_Formatter())
    log = logging.getLogger("bench")
    log.handlers[:] = [handler]
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    log.propagate = False  # TensorFlow or alibi may give the root logger a handler: print once


def _train(cfg, args) -> int:
    from bench.data import load_dataset
    from bench.models.train import load_or_train
    from bench.runner import resolve_device

    device = resolve_device(cfg.device)
    model, meta = load_or_train(cfg, load_dataset(cfg.dataset, cfg.data_dir), device,
                                progress=not args.quiet, force=args.force)
    print(json.dumps({k: meta[k] for k in ("test_accuracy", "val_accuracy", "train_seconds", "cached",
                                           "checkpoint", "weights_sha256") if k in meta}, indent=2))
    return 0
