"""Benchmarks reuse the test fixtures: the real MNIST, the real default CNN, its errors."""

from bench.contract.memory import keep_freed_memory
from tests.conftest import cache_dir, cnn, errors, mnist, oracle  # noqa: F401

keep_freed_memory()  # as `python -m bench` does, so timings match what the CLI sees
