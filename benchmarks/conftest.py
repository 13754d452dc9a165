"""Benchmarks reuse the test fixtures: the real MNIST, the real default CNN, its errors."""

from tests.conftest import cache_dir, cnn, errors, mnist, oracle  # noqa: F401
