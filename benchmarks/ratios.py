"""Print the ratio table from a pytest-benchmark JSON file (`tox -e perf` runs it)."""

from __future__ import annotations

import json
import sys

PAIRS = [
    ("alibi Counterfactual / our gradient solver (s per instance)", "test_alibi_wachter", "test_gradient_solver"),
    ("per-instance loop / batched Growing Spheres", "test_growing_spheres_per_instance_loop",
     "test_growing_spheres_batched"),
    ("Quantus PixelFlipping / our deletion AUC", "test_quantus_pixel_flipping", "test_deletion_auc"),
    ("our deletion AUC / its bare forward passes", "test_deletion_auc", "test_deletion_bare_forwards"),
    ("oracle forward / raw model forward", "test_oracle_forward", "test_raw_forward"),
    ("run cost 16 / 8 errors", "test_run_cost_growth[16]", "test_run_cost_growth[8]"),
    ("run cost 32 / 8 errors", "test_run_cost_growth[32]", "test_run_cost_growth[8]"),
    ("resnet_cbam forward: eager / optimised (s per 1,024 rows)", "test_forward_rows[eager-resnet_cbam]",
     "test_forward_rows[optimised-resnet_cbam]"),
    ("resnet_cbam / cnn forward, optimised (s per 1,024 rows)", "test_forward_rows[optimised-resnet_cbam]",
     "test_forward_rows[optimised-cnn]"),
    ("study slice: Ray / local executor (wall)", "test_study_wall[ray]", "test_study_wall[local]"),
]


def main(path: str) -> None:
    data = json.load(open(path))
    mean = {b["name"]: b["stats"]["mean"] for b in data["benchmarks"]}
    print(f"{'ratio':<62} {'value':>8}   (means: numerator / denominator, s)")
    for label, num, den in PAIRS:
        if num in mean and den in mean:
            print(f"{label:<62} {mean[num] / mean[den]:>8.2f}   ({mean[num]:.4g} / {mean[den]:.4g})")
        else:
            print(f"{label:<62} {'n/a':>8}   (missing {num if num not in mean else den})")
    for b in data["benchmarks"]:  # a study's wall against the sum of its units' seconds
        if b["name"].startswith("test_study_wall[") and b["extra_info"].get("units_seconds"):
            info = b["extra_info"]
            print(f"{b['name'] + ': study / sum of its ' + str(info['n_units']) + ' units':<62} "
                  f"{info['study_seconds'] / info['units_seconds']:>8.2f}   "
                  f"({info['study_seconds']:.4g} / {info['units_seconds']:.4g})")
    per = {k[len('test_attribution_method['):-1]: v for k, v in mean.items() if k.startswith("test_attribution_method[")}
    if per:
        n = next(b["extra_info"].get("n", 1) for b in data["benchmarks"] if b["name"].startswith("test_attribution"))
        print("\nattribution method: ms per instance over", n, "errors")
        for k, v in sorted(per.items(), key=lambda kv: kv[1]):
            print(f"  {k:<22} {1000 * v / n:8.2f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".benchmarks/perf.json")
