window.BENCH_TIPS = {
"counterfactuals/validity": "validity (↑ higher is better, v1): 1 if argmax f(x_cf) == target else 0.",
"counterfactuals/target_prob": "target_prob (↑ higher is better, v1): softmax probability of the target class at x_cf.",
"counterfactuals/l2": "l2 (↓ lower is better, v1): sqrt(sum((x_cf - x)^2)), pixel space [0,1]; not squared. Valid counterfactuals only.",
"counterfactuals/l1": "l1 (↓ lower is better, v1): sum(|x_cf - x|). Valid counterfactuals only.",
"counterfactuals/l0": "l0 (↓ lower is better, v1): number of pixels with |x_cf - x| > 0.001. Valid counterfactuals only.",
"counterfactuals/sparsity": "sparsity (↓ lower is better, v1): l0 / number of pixels (fraction of pixels changed). Valid counterfactuals only.",
"counterfactuals/tv": "tv (↓ lower is better, v1): anisotropic total variation of delta: sum|dh| + sum|dw|. Valid counterfactuals only.",
"counterfactuals/queries": "queries (↓ lower is better, v1): model input rows evaluated by the solver, counted by the oracle.",
"counterfactuals/grad_queries": "grad_queries (↓ lower is better, v1): model rows back-propagated by the solver, counted by the oracle.",
"counterfactuals/seconds": "seconds (↓ lower is better, v1): wall time of the solver per instance (batch time / batch size).",
"attributions/deletion_auc": "deletion_auc (↓ lower is better, v1): RISE deletion AUC: p(explained) as most-important pixels go to zeros, 28 px/step, (sum - first/2 - last/2)/(n-1).",
"attributions/insertion_auc": "insertion_auc (↑ higher is better, v1): RISE insertion AUC: p(explained) as most-important pixels are revealed on a blurred canvas (k11, sigma 5), 28 px/step, (sum - first/2 - last/2)/(n-1).",
"attributions/seconds": "seconds (↓ lower is better, v1): wall time of the method per instance (batch time / batch size)."
};
