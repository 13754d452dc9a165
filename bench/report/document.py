"""`bench report <folder>`: one Markdown file with every table and figure of a leaderboard folder."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from bench import board  # noqa: E402


def pareto_plot(cf_csv: Path, path: Path) -> Path:
    """Mean L2 (valid counterfactuals) vs mean model rows per error, one point per solver,
    with 95% CI bars; the Pareto front (fewer rows and smaller L2) is drawn as a line."""
    df = board.read_table(cf_csv)
    cost = df["queries"] + df["grad_queries"]
    fig, ax = plt.subplots(figsize=(6.2, 4.2))
    for (_, r), c in zip(df.iterrows(), cost):
        ax.errorbar(c, r["l2"], yerr=[[r["l2"] - r["l2_lo"]], [r["l2_hi"] - r["l2"]]], fmt="o", capsize=3,
                    label=f"{r['method']} (validity {r['validity']:.2f})")
    order = np.argsort(cost.to_numpy())
    front, best = [], np.inf
    for i in order:
        if df["l2"].iloc[i] < best:
            best = df["l2"].iloc[i]
            front.append(i)
    ax.plot(cost.iloc[front], df["l2"].iloc[front], "k--", lw=0.8, alpha=0.6, label="Pareto front")
    ax.set_xscale("log")
    ax.set_xlabel("model rows per error (forward + gradient), log scale")
    ax.set_ylabel("mean L2 of valid counterfactuals")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("Cost vs perturbation size")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def build_report(folder: str | Path) -> Path:
    """Write <folder>/report.md from the folder's leaderboards, provenance and figures."""
    folder = Path(folder)
    tables = [t.md(folder) for t in board.TABLES if t.md(folder).exists()]
    if not tables:
        raise FileNotFoundError(f"{folder}: no counterfactuals.md or attributions.md (run `python -m bench run` first)")
    parts = [f"# bench report: {folder}", ""]
    prov = board.provenance_path(folder)
    if prov is not None:
        p = board.read_json(prov)
        parts += [f"- created {p['created']}, git `{(p['git'].get('commit') or 'unknown')[:12]}`"
                  f"{' (dirty)' if p['git'].get('dirty') else ''}, device {p['device']['device']}",
                  f"- model `{p['model']['name']}` test accuracy {p['model']['test_accuracy']}, "
                  f"weights sha256 `{p['model']['weights_sha256'][:16]}`",
                  f"- {p['errors']['n']} errors, manifest sha256 `{p['errors']['manifest_sha256'][:16]}`"
                  + (" — NOT FOR PUBLICATION (--limit)" if p["errors"]["not_for_publication"] else ""), ""]
    for t in tables:
        text = t.read_text().replace("\n# ", "\n## ")
        parts += ["#" + text if text.startswith("# ") else text, ""]
    cf = board.COUNTERFACTUALS
    if cf.csv(folder).exists():
        figure = folder / f"{cf.stem}_pareto.png"
        pareto_plot(cf.csv(folder), figure)
        parts += ["## Cost vs perturbation size", "", f"![pareto]({figure.name})", ""]
    linked = "\n".join(parts)
    extra = [p.name for p in sorted(folder.glob("*.png")) if p.name not in linked]
    parts += [f"![{n}]({n})" for n in extra]
    out = folder / "report.md"
    out.write_text("\n".join(parts) + "\n")
    return out
