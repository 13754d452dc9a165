"""The cross-model comparison of a study on its common image set (issue 25).

Every model of the study explained the same test images (`study.rows` with "common",
bench.data.common), so each score is a (training seeds x images) matrix per model label and
two labels pair up image by image. Computed here, from the common cells' folders only:

- **Per-model normalisation.** The removal scores `del_morf_*` and `srg_*` are already divided
  by the explained class's starting probability p0 (AUC of p/p0), so a less confident model
  does not score better for it; and every attribution score also comes as
  `<score>_vs_random`: the score minus that model's own random control on the same image,
  which takes out what a model's confidence and its images give every map alike.
- **The accuracy floor.** A cell below its dataset's floor (bench.site.caveats.ACCURACY_FLOORS:
  MNIST 0.990) is left out; a label with fewer than 2 seeds left is shown unranked ("below the floor", or
  "1 seed at the floor (2 needed)") and ranked nowhere.
- **Intervals and tests.** A label's value: the mean over its seeds and images, with the
  two-level bootstrap interval (bench.stats.hierarchical). Per score, the best label against
  the runner-up and against the same backbone without attention: the paired two-level
  bootstrap difference (bench.stats.hierarchical_difference), all of the headline's
  comparisons one family, Holm-corrected; beside each, the smallest difference the comparison
  could detect at 80% power (2.80 x the difference's bootstrap standard error).
- **No claim for flagged scores.** A score whose metric the meta-evaluation flags on most
  labels' common boards, or whose best method does not beat its random control, gets no best.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from bench import board
from bench.stats import ALPHA, detectable_from_se, hierarchical, hierarchical_difference, holm

CF, ATTR = board.COUNTERFACTUALS.stem, board.ATTRIBUTIONS.stem
CF_SCORES = (("gradient", "validity"), ("growing_spheres", "validity"))
ATTR_METRICS = ("del_morf_zeros", "del_morf_blur", "srg_blur", "insertion_auc", "deletion_auc")
ATTR_METHODS = ("saliency", "ig", "gradcam", "deeplift", "deepshap")
CONTROL = "random"
N_BOOT = 2000


def label_parts(label: str) -> dict:
    """backbone, attention, placement of a zoo label `<backbone>-<attention>[-<placement>]`."""
    parts = label.split("-")
    return dict(backbone=parts[0], attention=parts[1] if len(parts) > 1 else "none",
                placement=parts[2] if len(parts) > 2 else ("-" if len(parts) < 2 or parts[1] == "none" else "blocks"))


def _instances(folder: Path, stem: str) -> pd.DataFrame | None:
    path = folder / f"{stem}_instances.csv"
    return pd.read_csv(path).fillna({"mode": ""}) if path.exists() else None


def cell_scores(folder: Path) -> pd.DataFrame:
    """One common cell's per-image scores, long: score, test_index, value (and vs_random rows)."""
    out = []
    cf = _instances(folder, CF)
    if cf is not None:
        for method, metric in CF_SCORES:
            rows = cf[cf["method"] == method]
            if len(rows) and metric in rows:
                out.append(pd.DataFrame(dict(score=f"{method}.{metric}", test_index=rows["test_index"],
                                             value=rows[metric].astype(float))))
    at = _instances(folder, ATTR)
    if at is not None:
        at = at[at["mode"].isin(["predicted", ""])]
        control = at[at["method"] == CONTROL].set_index("test_index")
        for metric in (m for m in ATTR_METRICS if m in at.columns):
            for method in ATTR_METHODS:
                rows = at[at["method"] == method]
                if rows.empty:
                    continue
                value = rows[metric].astype(float).to_numpy()
                out.append(pd.DataFrame(dict(score=f"{method}.{metric}", test_index=rows["test_index"], value=value)))
                if metric in control:
                    base = control[metric].reindex(rows["test_index"]).astype(float).to_numpy()
                    out.append(pd.DataFrame(dict(score=f"{method}.{metric}_vs_random",
                                                 test_index=rows["test_index"], value=value - base)))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=["score", "test_index", "value"])


def load(folders: list[Path], floor: float | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(cells: label, seed, test_accuracy, below_floor; scores: label, seed, score, test_index, value)."""
    cells, scores = [], []
    for f in folders:
        s = json.loads((f / "cell.json").read_text())
        below = floor is not None and s["test_accuracy"] < floor
        cells.append(dict(label=s["label"], seed=s["seed"], test_accuracy=s["test_accuracy"], below_floor=below,
                          n_params=s["n_params"], train_seconds=s["train_seconds"],
                          **{k: s.get(k, np.nan) for k in ("steps", "epochs", "train_cpu_seconds")}))
        scores.append(cell_scores(f).assign(label=s["label"], seed=s["seed"]))
    return pd.DataFrame(cells), pd.concat(scores, ignore_index=True)


def _matrix(scores: pd.DataFrame, label: str, score: str, images: np.ndarray, seeds: list[int]) -> np.ndarray:
    """(seeds x images) values of one label and score; NaN where a seed did not score an image."""
    sub = scores[(scores["label"] == label) & (scores["score"] == score)]
    wide = sub.pivot_table(index="seed", columns="test_index", values="value", aggfunc="first")
    return wide.reindex(index=seeds, columns=images).to_numpy(np.float64)


def compare(cells: pd.DataFrame, scores: pd.DataFrame, directions: dict, flagged: dict | None = None,
            n_boot: int = N_BOOT) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(values: one row per score and label; tests: the headline's comparisons, Holm-adjusted).

    `directions`: metric -> higher is better. `flagged`: metric -> reason (no best for it).
    """
    flagged = flagged or {}
    ok = cells[~cells["below_floor"]]
    seeds_of = ok.groupby("label")["seed"].apply(sorted).to_dict()
    ranked_labels = [lab for lab in dict.fromkeys(cells["label"]) if len(seeds_of.get(lab, [])) >= 2]
    values, tests = [], []
    for score in dict.fromkeys(scores["score"]):
        metric = score.split(".", 1)[1].removesuffix("_vs_random")
        higher = directions.get(metric)
        if higher is None:
            continue
        sub = scores[scores["score"] == score]
        images = np.array(sorted(sub["test_index"].unique()))
        mats = {lab: _matrix(sub, lab, score, images, seeds_of[lab]) for lab in ranked_labels}
        rows = []
        for lab in dict.fromkeys(cells["label"]):
            if lab not in mats:
                n_ok = len(seeds_of.get(lab, []))
                why = "below the floor" if n_ok == 0 else f"{n_ok} seed at the floor (2 needed)"
                rows.append(dict(score=score, label=lab, ranked=False, why=why, higher=higher,
                                 mean=np.nan, lo=np.nan, hi=np.nan, n_seeds=len(seeds_of.get(lab, [])),
                                 n_images=len(images), ci="none"))
                continue
            c = hierarchical(mats[lab], n_boot=n_boot)
            rows.append(dict(score=score, label=lab, ranked=True, why="", higher=higher, mean=c.mean, lo=c.lo,
                             hi=c.hi, n_seeds=mats[lab].shape[0], n_images=len(images), ci=c.method))
        table = pd.DataFrame(rows)
        ranked = table[table["ranked"]].sort_values("mean", ascending=not higher)
        table["rank"] = table["label"].map({lab: i + 1 for i, lab in enumerate(ranked["label"])})
        values.append(table)
        if len(ranked) < 2:
            continue
        best = ranked.iloc[0]["label"]
        rivals = [("runner-up", ranked.iloc[1]["label"])]
        parts = label_parts(best)
        plain = f"{parts['backbone']}-none"
        if parts["attention"] != "none" and plain in mats:
            rivals.append(("same backbone, no attention", plain))
        for role, other in rivals:  # (an MDD needs spread: two constant models leave it out)
            d = hierarchical_difference(mats[best], mats[other], n_boot=n_boot)
            tests.append(dict(score=score, best=best, other=other, role=role, diff=d.diff, lo=d.lo, hi=d.hi, p=d.p,
                              mdd=detectable_from_se(d.se) if d.se > 0 else np.nan, n_images=d.n_images,
                              flag=flagged.get(metric, ""), higher=higher))
    tests = pd.DataFrame(tests)
    if len(tests):
        tests["p_holm"] = holm(tests["p"].to_numpy())
        tests["shown"] = (tests["p_holm"] < ALPHA) & (tests["flag"] == "")
    return (pd.concat(values, ignore_index=True) if values else pd.DataFrame()), tests


def beats_control(values: pd.DataFrame) -> dict[str, bool]:
    """score -> whether its best label's `_vs_random` interval lies wholly on the better side of 0."""
    out = {}
    for score, rows in values[values["score"].str.endswith("_vs_random")].groupby("score"):
        best = rows[rows["rank"] == 1]
        if len(best):
            r = best.iloc[0]
            out[score.removesuffix("_vs_random")] = bool(r["lo"] > 0 if r["higher"] else r["hi"] < 0)
    return out


def markdown(values: pd.DataFrame, tests: pd.DataFrame, cells: pd.DataFrame, floor: float | None) -> list[str]:
    """study.md's section on the common set: the headline that the paired tests carry, then the values."""
    from bench.board import fmt

    below = cells[cells["below_floor"]]
    lines = ["## Headline on the common image set", "",
             f"Every model explained the same {int(values['n_images'].max()) if 'n_images' in values else 0} test "
             "images (bench.data.common), so models are compared image by image. Per score: the best label "
             "(mean over seeds and images [95% two-level bootstrap interval: seeds, then images]); against the "
             "runner-up and against the same backbone without attention, the paired two-level bootstrap difference "
             f"[95% interval], p, and Holm's adjustment over the {len(tests)} comparisons below (one family); "
             "MDD is the smallest difference the comparison could detect at 80% power. \"ahead\" only when the "
             f"Holm-adjusted p < {ALPHA} and the meta-evaluation does not flag the metric.", ""]
    if floor is not None:
        lines += [f"Accuracy floor {floor:.3f}: {len(below)} of {len(cells)} cells below it, left out"
                  + (": " + ", ".join(f"{r.label} seed {r.seed} ({r.test_accuracy:.4f})" for r in below.itertuples())
                     if len(below) else "") + ".", ""]
    control = beats_control(values) if len(values) else {}
    for _, t in tests.iterrows() if len(tests) else []:
        v = values[(values["score"] == t["score"]) & (values["label"] == t["best"])].iloc[0]
        verdict = "ahead of" if t["shown"] else "not shown to differ from"
        notes = [f"flagged: {t['flag']}"] if t["flag"] else []
        if t["score"] in control and not control[t["score"]]:
            notes.append("its best does not beat the random control")
        lines.append(f"- `{t['score']}` {'↑' if t['higher'] else '↓'}: **{t['best']}** {fmt(v['mean'])} "
                     f"[{fmt(v['lo'])}, {fmt(v['hi'])}] {verdict} {t['other']} ({t['role']}): difference "
                     f"{fmt(t['diff'])} [{fmt(t['lo'])}, {fmt(t['hi'])}], p = {fmt(t['p'])}, Holm {fmt(t['p_holm'])}, "
                     f"MDD {fmt(t['mdd'])}" + (f"; {'; '.join(notes)}" if notes else "") + ".")
    return lines + [""]


def table4(cells: pd.DataFrame, floor: float | None) -> list[str]:
    """Side by side with the seed report's Table 4: params, training cost and test accuracy per model label."""
    from bench.board import fmt
    from bench.stats import t_interval

    lines = ["## The models, laid out as the seed report's Table 4", "",
             "The seed report's Table 4 gave parameters, training time and test accuracy for each backbone x "
             "attention setting, for ImageNet-pretrained, frozen backbones at 224x224 RGB; its figures are not in "
             "this repository, so only ours stand here. Ours are trained from scratch on 28x28 grey MNIST, "
             "CPU-sized (bench/presets/zoo_v2.toml says how each differs from the full model), on this 2-core "
             "CPU: times are this machine's (1 torch thread per cell). Accuracy: mean [95% t interval over the "
             "seeds]" + (f"; a cell under {floor:.3f} is left out of every ranking" if floor is not None else "") + ".",
             "", "| backbone | attention | placement | parameters | steps | epochs | train s | test accuracy | "
             "seeds (at the floor) |", "|---|---|---|---|---|---|---|---|---|"]
    for label, rows in cells.groupby("label", sort=False):
        p = label_parts(label)
        acc = t_interval(rows["test_accuracy"])
        interval = f" [{fmt(acc.lo)}, {fmt(acc.hi)}]" if np.isfinite(acc.lo) else ""
        lines.append(f"| {p['backbone']} | {p['attention']} | {p['placement']} | {int(rows['n_params'].iloc[0]):,} | "
                     f"{fmt(rows['steps'].mean())} | {fmt(rows['epochs'].mean())} | {fmt(rows['train_seconds'].mean())} | "
                     f"{fmt(acc.mean)}{interval} | {len(rows)} ({int((~rows['below_floor']).sum())}) |")
    return lines + [""]
