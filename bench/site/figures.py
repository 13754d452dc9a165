"""Figures on the site: a caption that says what each shows, alt text that describes it, and a link that
opens the PNG at full size (the overlay and heatmap grids are 1,900-3,000 px wide)."""

from __future__ import annotations

from bench.site.html import esc

# file stem suffix -> (alt text, caption); the caption says how to read the figure
FIGURES = {
    "counterfactuals_overlays": (
        "Grid of digit images: per error a column, the original on top, then each solver's counterfactual and "
        "its change map",
        "Counterfactual overlays: for the first errors (columns), the misclassified image and, per solver (rows), "
        "its counterfactual x_cf and the change x_cf − x on its own colour scale, printed above it (red = ink "
        "added, blue = removed); 'not run' and 'failed' cells say so."),
    "counterfactuals_budget": (
        "Step curves of the share of errors flipped against model queries per error (log scale), one per solver, "
        "stars for amortised costs",
        "Query budget: the share of errors each solver flipped to the true class within a given number of model "
        "rows per error (forward + gradient, log scale); stars place solvers that trained once (fit) at their "
        "amortised cost per error; '(subset n=k)' marks solvers run on fewer errors."),
    "attributions_heatmaps": (
        "Grid of attribution heatmaps over faint digits: per error a column, per method a row",
        "Attribution heatmaps: for the first errors (columns), each method's map (rows) over the faint digit, "
        "each on its own symmetric scale ±max|attr| (red = evidence for the explained class, blue = against)."),
    "study_quality": (
        "Small multiples: per headline score a scatter of the score against test accuracy, one colour per model, "
        "squares with 95% intervals for the mean over seeds and dots for single seeds",
        "Explanation quality against test accuracy: one panel per headline score; each model's mean over its "
        "training seeds (square, 95% t interval) and each seed (dot). Scores of models with very different "
        "accuracy explain different error sets, so read across models with care."),
    "meta_agreement": (
        "Heatmap of Kendall tau between the method rankings of every two attribution metrics",
        "Rank agreement: Kendall tau-b between the rankings two metrics give the real methods on the first "
        "board (1 = same order, 0 = unrelated, −1 = reversed); the 95% bootstrap interval of each cell is in "
        "meta_agreement_lo.csv / meta_agreement_hi.csv."),
    "meta_truth": (
        "Interval plot: per metric a dot at its Kendall tau with the ground truth's method ranking and a bar "
        "for its 95% bootstrap interval, a vertical line at 0",
        "Truth agreement: per metric, Kendall tau between its ranking of the real methods and the ranking by the "
        "ground-truth localisation score (1 = the same order, −1 = reversed), with its 95% bootstrap interval over "
        "the images; blue = tracks the truth (interval above 0), red = contradicts it (below 0), grey = not shown "
        "either way. The rows below the faithfulness metrics are the other localisation scores, a cross-check."),
}


def figure(src: str, name: str) -> str:
    """A figure linked to its full-size PNG, with its caption and alt text.

    Args:
        src: the PNG's path relative to the page.
        name: its file name (the key into FIGURES is its stem's known suffix).

    Returns:
        HTML of the figure.
    """
    stem = name.rsplit(".", 1)[0]
    key = next((k for k in FIGURES if stem.endswith(k)), None)
    alt, caption = FIGURES[key] if key else (f"figure {stem}", f"Figure {stem}.")
    return (f'<figure class="fig"><a class="zoom" href="{esc(src)}" title="open full size">'
            f'<img src="{esc(src)}" alt="{esc(alt)}" loading="lazy"></a>'
            f'<figcaption>{esc(caption)} <a href="{esc(src)}">Open full size</a> '
            f'<span class="muted">({esc(name)})</span>.</figcaption></figure>')
