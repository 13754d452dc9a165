"""Lines for a board's Markdown from what its metrics recorded about their own instruments.

`plausibility_note(prov)` takes the `plausibility` section the metrics' provenance hooks write
(metrics/plausibility.py: autoencoders' per-class test reconstruction errors, the second
classifier's test accuracy) and says it where a reader of the table looks; `leakage_note(table)` does the same for the
removal operators' leakage table (metrics/leakage.py `board_leakage`, provenance `removal_leakage`).
"""

from __future__ import annotations


def plausibility_note(prov: dict) -> list[str]:
    """Markdown lines (none when no plausibility model was used)."""
    ae, clf = prov.get("autoencoders"), prov.get("second_classifier")
    parts = []
    if ae and ae.get("test_recon_sq_l2"):
        err = {k: float(v) for k, v in ae["test_recon_sq_l2"].items()}
        per = {k: v for k, v in err.items() if k != "all"}
        lo, hi = min(per, key=per.get), max(per, key=per.get)
        parts.append(f"the class autoencoders' mean squared test reconstruction error runs from {per[lo]:.2f} "
                     f"(class {lo}) to {per[hi]:.2f} (class {hi})"
                     + (f", the all-class one's is {err['all']:.2f}" if "all" in err else "")
                     + " (im1 is not comparable across target classes; im1_class divides by these)")
    if clf and clf.get("test_accuracy") is not None:
        parts.append(f"the independent classifier behind oracle_agreement has test accuracy {float(clf['test_accuracy']):.4f}")
    return [f"Plausibility models: {'; '.join(parts)}."] if parts else []


def leakage_note(table: dict) -> list[str]:
    """The board's lines under its table: each operator's detector AUC beside the unchanged floor."""
    if not table or not table.get("rows"):
        return []
    rows = {r["operator"]: r for r in table["rows"]}
    floor = rows.get("none", {}).get("detector_auc", float("nan"))
    parts = ", ".join(f"{op} {r['detector_auc']:.3f}" for op, r in rows.items() if op != "none")
    first = next(iter(rows.values()))
    return ["", f"Removal operators and what they leak (ROAD's checks, metrics/leakage.py, on {table['images']} test "
            f"images, masks = {table['ranking']} at {', '.join(f'{f:.0%}' for f in table['fractions'])}): a detector "
            f"trained to find the removed pixels reaches a held-out per-pixel AUC of {parts} "
            f"(unchanged images: {floor:.3f}, what the image alone tells about where the ranking points; chance 0.5); "
            f"the class from the mask alone: {first['class_from_mask']:.3f} (chance {first['class_chance']:.3f}). "
            f"Least leaking: {table['least_leaking']}."]
