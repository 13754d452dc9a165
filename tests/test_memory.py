"""Pinned glibc thresholds keep a forward pass free of page faults after a big free."""

import subprocess
import sys

import pytest

PROBE = """
import resource, sys, torch
from bench.contract.memory import keep_freed_memory
if sys.argv[1] == "pin":
    assert keep_freed_memory()
torch.set_num_threads(2)
conv = torch.nn.Conv2d(1, 32, 3).eval()
x = torch.rand(256, 1, 28, 28)
with torch.no_grad():
    conv(x)
    for _ in range(3):  # what training leaves behind: large blocks allocated and freed
        big = [torch.ones(64 << 20 >> 2) for _ in range(4)]
        del big
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        conv(x)  # 256 x 32 x 26 x 26 floats = 22 MB of activations per call
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return int(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_pinned_thresholds_stop_refaulting_activations():
    pinned, default = _faults("pin"), _faults("default")
    # 20 passes x 22 MB re-faulted would be ~110k 4-KiB faults; measured here: 5.4k pinned, 205k default
    assert pinned < 20_000, pinned  # the forward passes reuse memory that is already mapped
    assert default > 10 * pinned, (default, pinned)  # glibc's own thresholds fault it in again
