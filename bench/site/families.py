"""Method families: the one table that groups registry names for the site (the index's cross-board summary
and the board tables' family filter). A method no pattern matches is in OTHER.

FAMILIES maps a task (the board's table stem) to {family label: fnmatch patterns of method names}, in the
order the site lists them; the first family whose pattern matches wins. Add a new method's name (or a
pattern) here when it belongs to an existing family; a new family is a new key.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from bench.board import ATTRIBUTIONS, COUNTERFACTUALS

OTHER = "other"
CONTROL = "control"

FAMILIES: dict[str, dict[str, tuple[str, ...]]] = {
    ATTRIBUTIONS.stem: {
        "gradient": ("saliency", "input_x_gradient", "smoothgrad", "guided_backprop"),
        "integrated gradients": ("ig", "ig_*"),
        "DeepLift / SHAP": ("deeplift", "deepshap", "gradient_shap"),
        "CAM": ("gradcam", "guided_gradcam", "scorecam", "contrast_cam", "counterfactual_cam"),
        "perturbation": ("occlusion", "lime", "kernel_shap"),
        "LRP": ("lrp_*",),
        CONTROL: ("random",),
    },
    COUNTERFACTUALS.stem: {
        "white-box gradient": ("gradient",),
        "black-box search": ("growing_spheres",),
        "alibi": ("alibi_*",),
        "decision-based attacks": ("hopskipjump", "boundary_attack", "sign_opt"),
    },
}


def family_of(stem: str, method: str) -> str:
    """The family label of a method in a task's table (OTHER when no pattern of FAMILIES matches).

    Args:
        stem: the table's stem (bench.board.STEMS).
        method: the registry name in the CSV's `method` column.

    Returns:
        The family label.
    """
    for family, patterns in FAMILIES.get(stem, {}).items():
        if any(fnmatchcase(method, p) for p in patterns):
            return family
    return OTHER


def families_in(stem: str, methods) -> list[str]:
    """The families of `methods` in FAMILIES' order, OTHER last, each once."""
    found = {family_of(stem, m) for m in methods}
    order = [*FAMILIES.get(stem, {}), OTHER]
    return [f for f in order if f in found]
