"""A line for the counterfactual board's Markdown: the quality of the models the plausibility metrics use.

`plausibility_note(prov)` takes the `plausibility` section the metrics' provenance hooks write
(metrics/plausibility.py: autoencoders' per-class test reconstruction errors, the second
classifier's test accuracy) and says it where a reader of the table looks.
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
