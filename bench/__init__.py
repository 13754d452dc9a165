"""bench: how well do explanation methods explain an image classifier's mistakes?

    import bench
    r = bench.run(preset="tiny")              # Results: leaderboard tables + per-instance scores
    bench.load("leaderboards/mnist/cnn")      # a published board, read back

Plugins import `bench.contract` (the contract). Nothing heavy is imported until it is used.
"""

__version__ = "0.1.0"
__all__ = ["run", "load", "Results", "__version__"]


def __getattr__(name: str):
    if name in ("run", "load", "Results"):
        from bench import python_api

        return getattr(python_api, name)
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
