"""Metrics, each built-in's name written here once (no heavy imports). Each is a pure function -> Tensor[N].

CF_METRICS score counterfactuals, ATTR_METRICS score attribution maps; the order here is the
order of a board's columns when a run names no metrics. The function in its module carries
`@metric(CF_METRICS, ...)` without a name: the decorator finds its declaration here by the
function's "module:name". Definitions are pinned in the functions' docstrings and in
leaderboards/README.md.
"""

from bench.contract.registry import ATTR_METRICS, CF_METRICS

_CF = "metrics.counterfactual"
for _name, _summary in [
    ("validity", "argmax f(x_cf) == target (share of errors flipped to their true class)"),
    ("target_prob", "softmax probability of the target class at x_cf"),
    ("l2", "sqrt(sum (x_cf - x)^2) in [0,1] pixel space (not squared)"),
    ("l1", "sum |x_cf - x|"),
    ("l0", "pixels with |x_cf - x| > 1e-3"),
    ("sparsity", "l0 / number of pixels (fraction changed)"),
    ("tv", "anisotropic total variation of delta = x_cf - x"),
    ("queries", "model input rows evaluated by the solver (counted by the oracle)"),
    ("grad_queries", "model rows back-propagated by the solver (counted by the oracle)"),
    ("seconds", "wall time per instance (batch time / batch size)"),
]:
    CF_METRICS.declare(_name, f"{_CF}:{_name}", _summary)
CF_METRICS.declare("cost", "metrics.cost:cost",
                   "queries + r * grad_queries in forward-pass equivalents (r = backward/forward time, measured in the run)")

_PL = "metrics.plausibility"
for _name, _summary in [
    ("knn_ratio", "mean distance of x_cf to its k nearest target-class training images / same for x"),
    ("im1", "IM1 (Van Looveren & Klaise): AE_target recon error / AE_original recon error at x_cf"),
    ("im1_class", "IM1 with each class AE's error divided by its own test reconstruction error (comparable across classes)"),
    ("l2_ae", "L2 from x_cf to the all-class autoencoder's reconstruction of x (decoder floor taken out)"),
    ("im2", "IM2 (Van Looveren & Klaise): ||AE_target(x_cf) - AE_all(x_cf)||^2 / ||x_cf||_1"),
    ("oracle_agreement", "1 if an independently trained second classifier also assigns x_cf to target"),
]:
    CF_METRICS.declare(_name, f"{_PL}:{_name}", _summary)

# Attribution metrics (ATTR_METRICS): the removal operators first (the board's headline is
# del_morf_zeros, the operator that leaks least on MNIST; README "Removal operators"), then the rest.
for _op, _what in [("zeros", "zeros"), ("blur", "RISE's blur"), ("mean", "the image's mean"),
                   ("road", "ROAD's noisy linear imputation")]:
    ATTR_METRICS.declare(f"del_morf_{_op}", f"metrics.removal:del_morf_{_op}",
                         f"deletion, most relevant first, onto {_what}: AUC of p(explained)/p0 (lower better)")
    ATTR_METRICS.declare(f"del_lerf_{_op}", f"metrics.removal:del_lerf_{_op}",
                         f"deletion, least relevant first (the reversed map: inverse control), onto {_what}: "
                         f"AUC of p(explained)/p0 (higher better)")
    ATTR_METRICS.declare(f"srg_{_op}", f"metrics.removal:srg_{_op}",
                         f"SRG under {_what}: del_lerf - del_morf, both p0-normalised (higher better)")
ATTR_METRICS.declare("deletion_auc", "metrics.deletion_insertion:deletion_auc",
                     "RISE deletion AUC: p(explained) as most-important pixels go to 0, 28 px/step (lower better)")
ATTR_METRICS.declare("insertion_auc", "metrics.deletion_insertion:insertion_auc",
                     "RISE insertion AUC: p(explained) as most-important pixels appear on a blurred canvas (higher better)")
ATTR_METRICS.declare("contour_patch", "metrics.contour_patch:contour_patch",
                     "1 if the convex-hull patch of the opened/dilated top-10% attribution alone keeps the class")
ATTR_METRICS.declare("q_faithfulness_correlation", "metrics.quantus_metrics:q_faithfulness_correlation",
                     "Quantus FaithfulnessCorrelation (Bhatt et al. 2020), 100 random 112-px subsets set to 0")
ATTR_METRICS.declare("q_faithfulness_estimate", "metrics.quantus_metrics:q_faithfulness_estimate",
                     "Quantus FaithfulnessEstimate (Alvarez-Melis & Jaakkola 2018), 28-px groups set to 0")
ATTR_METRICS.declare("q_monotonicity_correlation", "metrics.quantus_metrics:q_monotonicity_correlation",
                     "Quantus MonotonicityCorrelation (Nguyen & Martinez 2020), 28-px groups, 10 uniform draws; off the boards")
ATTR_METRICS.declare("q_pixel_flipping", "metrics.quantus_metrics:q_pixel_flipping",
                     "Quantus PixelFlipping (Bach et al. 2015), 28 px/step to 0, AUC normalised to [0,1]; off the boards")
ATTR_METRICS.declare("q_max_sensitivity", "metrics.quantus_metrics:q_max_sensitivity",
                     "Quantus MaxSensitivity (Yeh et al. 2019), 10 re-explanations, U(-0.2,0.2) on the digit")
ATTR_METRICS.declare("q_avg_sensitivity", "metrics.quantus_metrics:q_avg_sensitivity",
                     "Quantus AvgSensitivity (Yeh et al. 2019), the same 10 re-explanations")
ATTR_METRICS.declare("q_local_lipschitz_estimate", "metrics.quantus_metrics:q_local_lipschitz_estimate",
                     "Quantus LocalLipschitzEstimate (Alvarez-Melis & Jaakkola 2018), the same 10 re-explanations")
ATTR_METRICS.declare("q_relative_output_stability", "metrics.quantus_metrics:q_relative_output_stability",
                     "Quantus RelativeOutputStability (Agarwal et al. 2022), 10 U(-0.05,0.05) samples, NaN if one flips; off the boards")
ATTR_METRICS.declare("q_sparseness", "metrics.quantus_metrics:q_sparseness",
                     "Quantus Sparseness: Gini index of |attr| (Chalasani et al. 2020)")
ATTR_METRICS.declare("q_complexity", "metrics.quantus_metrics:q_complexity",
                     "Quantus Complexity: entropy of the |attr| distribution (Bhatt et al. 2020)")
ATTR_METRICS.declare("q_random_logit", "metrics.quantus_metrics:q_random_logit",
                     "Quantus RandomLogit (Sixt et al. 2020): 2-D SSIM with the map for a random other class")
ATTR_METRICS.declare("road_morf", "metrics.road:road_morf",
                     "ROAD MoRF (Rong et al. 2022): most relevant 10..90% imputed from neighbours, p(explained)/p0 (lower better); off the boards")
ATTR_METRICS.declare("road_lerf", "metrics.road:road_lerf",
                     "ROAD LeRF: least relevant 10..90% imputed from neighbours, p(explained)/p0 (higher better); off the boards")
ATTR_METRICS.declare("road_srg", "metrics.road:road_srg",
                     "ROAD LeRF - MoRF: both orders in one score (higher better); off the boards")
ATTR_METRICS.declare("q_mprt", "metrics.quantus_metrics:q_mprt",
                     "Quantus MPRT (Adebayo et al. 2018), cascading, foreground Spearman, mean over layers (constant map: 0)")

# Localisation against a ground-truth mask (needs=("mask",), off the default boards: the controlled
# sets' presets name them; bench.data.controlled).
_LOC = "metrics.localisation"
for _name, _summary in [
    ("loc_pointing_game", "Quantus PointingGame: 1 if the map's maximum lies in the ground-truth mask"),
    ("loc_attribution_localisation", "Quantus AttributionLocalisation: positive attribution in the mask / all positive attribution"),
    ("loc_top_k_intersection", "Quantus TopKIntersection: share of the map's 16 highest pixels inside the mask"),
    ("loc_relevance_rank_accuracy", "Quantus RelevanceRankAccuracy: share of the |mask| top-|attr| pixels inside the mask"),
    ("loc_relevance_mass_accuracy", "Quantus RelevanceMassAccuracy: sum |attr| in the mask / sum |attr|"),
    ("loc_auc", "Quantus AUC: ROC AUC of |attr| as a pixel score for the mask (0.5 = chance)"),
]:
    ATTR_METRICS.declare(_name, f"{_LOC}:{_name}", f"{_summary}; needs a ground-truth mask")
CF_METRICS.declare("cf_mask_share", f"{_LOC}:cf_mask_share",
                   "share of sum |x_cf - x| inside the ground-truth mask (NaN when nothing changed); needs a mask")
