"""Command line: `python -m bench {run,train,check,config,runs,list,report,site,meta}`.

This module imports no torch or TensorFlow at start-up: `--help`, `--version`, `list` and
`runs` stay instant. Bad input (unknown preset, key, name, value out of range, missing file or
device) is one line on stderr and exit code 2, before any data is loaded or model trained.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from pathlib import Path

from bench.listing import cmd_list, cmd_runs


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line too (`bench: error: ...`, exit code 2)."""

    def error(self, message: str):
        self.exit(2, f"bench: error: {message} (see {self.prog} --help)\n")


def _verbosity() -> argparse.ArgumentParser:
    """-v / -q, accepted before or after the command (defaults suppressed: neither clobbers the other)."""
    p = _Parser(add_help=False)
    g = p.add_mutually_exclusive_group()
    g.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                   help="debug messages too (logging level DEBUG)")
    g.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                   help="no progress bars and no info messages: warnings and errors only")
    return p


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default="default", help="preset name (bench/presets) or a .toml path")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, dotted (repeatable), e.g. --set train.epochs=5")
    p.add_argument("--seed", type=int, default=None, metavar="N",
                   help="the run seed (same as --set seed=N): the model's training and every method's noise")
    p.add_argument("--device", default=None, help="auto | cpu | cuda (default: the preset's, auto)")
    p.add_argument("--limit", type=int, default=None, help="only the first N errors (not for publication)")
    p.add_argument("--out", default=None, help="root folder of the tables (default: runs/<dataset>/<model>/<time>/; "
                   "leaderboards/ with --publish)")
    p.add_argument("--cache-dir", default=None, help="models, data and run store (default: ~/.cache/bench)")
    p.add_argument("--data-dir", default=None, help="an IDX folder, or 'download' (default: the dataset's offline copy)")
    p.add_argument("--store", default=None,
                   help="the SQLite run store (default: <cache-dir>/runs/<dataset>/<model>.sqlite)")
    p.add_argument("--retrain", action="store_true", default=None,
                   help="ignore the shipped reference weights (leaderboards/weights): use or train "
                        "checkpoints of this machine")


def build_parser() -> argparse.ArgumentParser:
    from bench import __version__

    verbosity = _verbosity()
    parser = _Parser(prog="bench", parents=[verbosity], description="How well do explanation methods "
                     "explain an image classifier's mistakes? Counterfactual and attribution leaderboards.")
    parser.add_argument("--version", action="version", version=f"bench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_, parents=[verbosity])

    p_run = add("run", "train/load the model, explain its errors, write leaderboards")
    _common(p_run)
    p_run.add_argument("--publish", action="store_true", default=None,
                       help="write leaderboards/<dataset>/<model>/ (not runs/) and pin the weights used")
    p_run.add_argument("--force", action="store_true", default=None,
                       help="with --publish: publish from a checkout with uncommitted code anyway")
    p_run.add_argument("--executor", choices=("local", "ray"), default="local",
                       help="who runs a study's units: local (this process, default) or ray (Ray tasks; "
                            "the [ray] extra)")
    p_run.add_argument("--address", default=None, metavar="HOST:PORT",
                       help="with --executor ray: an existing Ray cluster (default: start a local one)")
    p_train = add("train", "train (or load from cache) the configured classifier, or every cell's of a study")
    _common(p_train)
    p_train.add_argument("--force", action="store_true", help="retrain even when a checkpoint is cached")
    p_train.add_argument("--pin", action="store_true",
                         help="a study: pin each checkpoint in leaderboards/weights/ as soon as it is trained, "
                              "so a grid is trained in sittings and published later from the pinned weights")
    p_check = add("check", "run the ci preset and compare with committed baselines")
    _common(p_check)
    p_check.add_argument("--baseline", default="leaderboards/ci", help="baseline folder")
    p_check.add_argument("--board", default=None,
                         help="verify a fresh run of a published board's own config against it "
                              "(e.g. leaderboards/mnist/cnn); replaces --preset and --baseline")
    p_check.add_argument("--update", action="store_true", help="rewrite the baselines deliberately")
    p_check.add_argument("--plugin", action="append", default=[], metavar="FILE",
                         help="with --board: a plugin you trust that the board needs (repeatable); the plugins a "
                              "board's provenance names are never imported")
    p_check.set_defaults(preset="ci")
    p_config = add("config", "validate a config and print it, resolved, as TOML (a preset file)")
    _common(p_config)
    p_runs = add("runs", "list past runs recorded in the run stores")
    p_runs.add_argument("--cache-dir", default=None, help="whose stores (default: ~/.cache/bench)")
    p_runs.add_argument("--store", default=None, help="one store file instead of every store under the cache")
    p_list = add("list", "list presets, datasets, models, solvers, attributions, metrics")
    p_list.add_argument("what", nargs="?", default="all")
    p_report = add("report", "build one Markdown report from a leaderboard folder")
    p_report.add_argument("folder", help="e.g. leaderboards/mnist/cnn")
    p_site = add("site", "build the static leaderboard site (plain files) from every board folder")
    p_site.add_argument("--root", default="leaderboards", help="folder holding the boards (default: leaderboards)")
    p_site.add_argument("--out", default=None, help="output folder (default: <root>/site)")
    p_meta = add("meta", "meta-evaluate boards (e.g. one model's seeds): separation, agreement, stability")
    p_meta.add_argument("folders", nargs="+", help="board or run folders, e.g. runs/mnist/zoo/<time>/cnn-seed0")
    p_meta.add_argument("--out", default=None, help="output folder (default: runs/meta/<UTC time>/)")
    p_meta.add_argument("--title", default=None, help="title of meta.md (default: the folders' names)")
    p_meta.add_argument("--n-boot", type=int, default=200, help="bootstrap resamples for stability (default 200)")
    p_meta.add_argument("--annotate", action="store_true",
                        help="also list the flagged metrics under each given board's tables (its .md files)")
    return parser


def _config(args):
    from bench.config import make_config

    return make_config(args.preset, args.overrides, device=args.device, limit=args.limit, seed=args.seed,
                       out=args.out, cache_dir=args.cache_dir, data_dir=args.data_dir, store=args.store,
                       retrain=args.retrain, publish=getattr(args, "publish", None),
                       force=getattr(args, "force", None))


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
    args.quiet, args.verbose = getattr(args, "quiet", False), getattr(args, "verbose", 0)
    _logging(args.quiet, args.verbose)
    log = logging.getLogger("bench")
    try:
        return _dispatch(args)
    finally:  # in-process callers (tests, notebooks) get the logger and the environment back as they were
        if os.environ.pop("_BENCH_SET_MPLCONFIGDIR", None) is not None:
            os.environ.pop("MPLCONFIGDIR", None)
        log.handlers[:] = [h for h in log.handlers if not isinstance(h, _StderrHandler)]
        log.propagate = True
        log.setLevel(logging.NOTSET)
        from bench.progress import set_enabled

        set_enabled(True)


def _dispatch(args) -> int:
    try:
        if args.command == "list":
            return cmd_list(args.what)
        if args.command == "runs":
            return cmd_runs(args.cache_dir, args.store)
        if args.command == "report":
            from bench.boardcheck import check_board
            from bench.report.document import build_report

            if Path(args.folder).is_dir():
                check_board(args.folder)
            print(build_report(args.folder))
            return 0
        if args.command == "site":
            from bench.atomic import dumps
            from bench.site import build_site

            print(dumps(build_site(args.root, args.out)))
            return 0
        if args.command == "meta":
            return cmd_meta(args.folders, args.out, args.title, args.n_boot, args.annotate)
        if args.command == "check":
            _check_folders(args)
        if args.command == "run":
            _executor_args(args)
        cfg = _config(args)
        if args.command == "run" and args.executor != "local" and cfg.study is None:
            from bench.contract.params import ConfigError

            raise ConfigError(f"--executor {args.executor} runs studies: preset {args.preset!r} has no [study] table")
        if args.command == "check" and args.board:
            from dataclasses import replace

            from bench.check import board_config

            cfg, args.baseline = board_config(args.board, cfg, args.plugin), args.board
            cfg = cfg if args.seed is None else replace(cfg, seed=args.seed)
        from bench.validate import validate

        if "MPLCONFIGDIR" not in os.environ and args.command != "config":  # matplotlib's font cache: in --cache-dir
            os.environ["MPLCONFIGDIR"] = os.environ["_BENCH_SET_MPLCONFIGDIR"] = str(
                Path(cfg.cache_dir).expanduser() / "matplotlib")  # (set before validate imports the methods)
        validate(cfg, extras=args.command != "train")  # every name, value, file and device: exit 2 before any work
        if args.command == "config":
            from bench.toml_io import to_toml

            print(to_toml(cfg), end="")
            return 0
        from bench.contract.memory import keep_freed_memory

        keep_freed_memory()  # steady forward speed after training in-process (see bench/contract/memory.py)
        if args.command == "train":
            from bench.train_command import train

            return train(cfg, args)
        if args.command == "check":
            from bench.check import check

            return check(cfg, args.baseline, update=args.update, progress=not args.quiet)
        if cfg.study is not None:
            return _study(cfg, args)
        from bench.leaderboard import headline
        from bench.runner import run

        summary = run(cfg, progress=not args.quiet)
        print(headline(summary["folder"]))
        rows = {"errors": "errors", "correct": "correct predictions", "common": "images of the common set"}[cfg.rows]
        print(f"\n{summary['n_errors']} {rows}, {summary['seconds']:.0f} s; tables, figures and provenance in "
              f"{summary['folder']}")
        return 0
    except KeyboardInterrupt:
        print("bench: interrupted (finished work is kept in the run store)", file=sys.stderr)
        return 130
    except (ValueError, TypeError, KeyError, OSError, RuntimeError, EOFError) as e:
        if os.environ.get("BENCH_DEBUG"):
            raise
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:
            msg = (f"the disk is full ({e.filename or 'writing a file'}): free some space and run the same command "
                   "again (finished work is kept in the run store)")
        print(f"bench: error: {msg}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - whatever else (a library's own error type): one line, never a traceback
        if os.environ.get("BENCH_DEBUG"):
            raise
        import sqlite3
        import zipfile
        import zlib

        msg = str(e).splitlines()[0] if str(e) else ""
        if isinstance(e, (sqlite3.Error, zlib.error, zipfile.BadZipFile)):
            print(f"bench: error: a damaged file ({type(e).__name__}: {msg}); BENCH_DEBUG=1 shows which",
                  file=sys.stderr)
            return 2
        print(f"bench: error: unexpected {type(e).__name__}: {msg} (BENCH_DEBUG=1 shows the traceback; please "
              "report it)", file=sys.stderr)
        return 1


def _executor_args(args) -> None:
    """--address needs --executor ray, and ray needs its extra installed: one line, before any work."""
    from bench.contract.params import ConfigError
    from bench.validate import extra_installed, install_hint

    if args.address is not None and args.executor != "ray":
        raise ConfigError("--address points at a Ray cluster: it needs --executor ray")
    if args.address is not None and not args.address.strip():
        raise ConfigError("--address must be a Ray cluster address such as 10.0.0.1:6379, got ''")
    if args.executor == "ray" and not extra_installed("ray"):
        raise ConfigError(f"--executor ray needs the optional extra [ray]: {install_hint('ray')}")


def _study(cfg, args) -> int:
    """`bench run` on a preset with [study]: every cell's boards, then the study table."""
    from pathlib import Path

    from bench.study import run_study

    summary = run_study(cfg, executor=args.executor, address=args.address, progress=not args.quiet)
    for folder in summary["folders"].values():
        table = Path(folder) / "study.md"
        if table.exists():  # the Markdown tables, without the prose
            print("## Models" + table.read_text().split("## Models", 1)[-1].split("Attribution scores are")[0])
    failed = f"; {len(summary['failed'])} unit(s) failed on the executor (see study.json)" if summary["failed"] else ""
    print(f"{len(summary['cells'])} cells, {len(summary['units'])} units ({summary['executor']['executor']}), "
          f"{summary['seconds']:.0f} s{failed}; study table, boards and provenance in "
          + ", ".join(summary["folders"].values()))
    return 0


def cmd_meta(folders: list[str], out: str | None, title: str | None, n_boot: int, annotate: bool = False) -> int:
    """bench.meta over existing boards: meta_*.csv, meta.md and the agreement heatmap in `out`.

    With `annotate`, each board's counterfactuals.md / attributions.md gets the flagged metrics
    under its table (bench.meta.annotate; the tables themselves are untouched).
    """
    import os
    import time
    from pathlib import Path

    from bench.board import TABLES
    from bench.contract.params import ConfigError, Range

    Range("[1, 100000]").check("--n-boot", n_boot, 200)  # as n_bootstrap: 1e8 resamples would hang
    for f in folders:
        if not Path(f).is_dir():
            raise ConfigError(f"meta: {f}: no such folder (a board or run folder)")
        if not any(t.instances(f).is_file() for t in TABLES):
            raise ConfigError(f"meta: {f}: not a board (no counterfactuals_instances.csv or attributions_instances.csv)")
    from bench import meta
    from bench.folders import RUNS
    from bench.results import load

    target = Path(out) if out else Path(RUNS) / "meta" / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    tables = meta.summary([load(f) for f in folders], n_boot=n_boot)
    paths = meta.write(tables, target, title or ", ".join(Path(f).name for f in folders))
    if annotate:
        for f in folders:
            paths += meta.annotate(Path(f), tables, os.path.relpath(target / "meta.md", f))
    print((target / "meta.md").read_text())
    print(f"meta-evaluation of {len(folders)} board(s): {len(paths)} files in {target}")
    return 0


def _check_folders(args) -> None:
    """`check --board` names a board folder; `--baseline` (unless rewritten by --update) holds tables."""
    from pathlib import Path

    from bench.board import TABLES, tables_in
    from bench.contract.params import ConfigError

    if args.plugin and not args.board:
        raise ConfigError("--plugin names a plugin a board needs: it goes with --board (a preset names its "
                          "own plugins)")
    if args.board:
        if args.limit is not None:
            raise ConfigError("check --board verifies the whole error set: drop --limit")
        board = Path(args.board)
        if not board.is_dir():
            raise ConfigError(f"check --board {args.board}: no such folder (e.g. leaderboards/mnist/cnn)")
        if not tables_in(board):
            raise ConfigError(f"check --board {args.board}: not a board (no counterfactuals.json or "
                              "attributions.json)")
        from bench.boardcheck import check_board

        check_board(board, full=True)  # a board it cannot fully compare is refused before the rerun
    elif not args.update:
        base = Path(args.baseline)
        if not base.is_dir():
            raise ConfigError(f"check --baseline {args.baseline}: no such folder (make one with --update)")
        if not any(t.csv(base).is_file() for t in TABLES):
            raise ConfigError(f"check --baseline {args.baseline}: no counterfactuals.csv or attributions.csv "
                              "in it (make them with --update)")
        from bench.boardcheck import check_board

        check_board(base, full=True)


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


def _logging(quiet: bool, verbose: int = 0) -> None:
    """Messages on stderr as `bench: ...`: INFO by default, -v DEBUG, -q warnings and errors only
    (and no progress bars)."""
    from bench.progress import set_enabled

    set_enabled(not quiet)
    handler = _StderrHandler()
    handler.setFormatter(_Formatter())
    log = logging.getLogger("bench")
    log.handlers[:] = [handler]
    log.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    log.propagate = False  # TensorFlow or alibi may give the root logger a handler: print once
