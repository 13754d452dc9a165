"""Counterfactual solvers and attribution methods: each built-in's name is written here, once.

A declaration names the entry, the "module:attr" that holds it, its summary and the optional
extra it needs, so `bench list` names it without importing torch, captum or TensorFlow. The
object in its module carries `@SOLVERS.register()` / `@ATTRIBUTIONS.register()` without a name:
the decorator finds this declaration by the object's "module:qualname". Third-party packages
add entries through the entry-point groups `bench.solvers` and `bench.attributions`.
"""

from bench.contract.registry import ATTRIBUTIONS, SOLVERS

SOLVERS.declare("gradient", "solvers.gradient:GradientSolver",
                "white-box Wachter-style solver: CE toward target + L2 + TV on delta, Adam, batched")
SOLVERS.declare("growing_spheres", "solvers.growing_spheres:GrowingSpheres",
                "black-box Growing Spheres (Laugel et al. 2018), targeted, log-space radii, batched")
SOLVERS.declare("alibi_proto", "solvers.alibi_proto:AlibiProto",
                "alibi CounterfactualProto, prototype-guided fast regime (c_init=0), worker process", extra="alibi")
SOLVERS.declare("alibi_proto_numgrad", "solvers.alibi_proto:AlibiProtoNumGrad",
                "alibi CounterfactualProto with the numerical-gradient prediction loss (expensive)", extra="alibi")
SOLVERS.declare("alibi_wachter", "solvers.alibi_wachter:AlibiWachter",
                "alibi Counterfactual (Wachter et al.), numerical gradients, worker process", extra="alibi")
SOLVERS.declare("alibi_rl", "solvers.alibi_rl:AlibiRL",
                "alibi CounterfactualRL: actor-critic trained once in fit() (counted), one pass per error, PyTorch",
                extra="alibi")
SOLVERS.declare("hopskipjump", "solvers.attack_art:HopSkipJump",
                "ART HopSkipJump: decision-based, targeted, L2, from the nearest target-class training image, max_queries",
                extra="art")
SOLVERS.declare("boundary_attack", "solvers.attack_art:BoundaryAttack",
                "ART Boundary Attack: decision-based random walk on the boundary, targeted, max_queries", extra="art")
SOLVERS.declare("sign_opt", "solvers.attack_art:SignOpt",
                "ART Sign-OPT: hard-label sign-gradient attack, targeted, one row per call, max_queries",
                extra="art")

# Attribution methods (ATTRIBUTIONS) are declared below.
ATTRIBUTIONS.declare("saliency", "solvers.attr_gradients:Saliency",
                     "vanilla gradient magnitude |d logit / dx| (Simonyan et al. 2014), captum")
ATTRIBUTIONS.declare("input_x_gradient", "solvers.attr_gradients:InputXGradient",
                     "input times gradient (Shrikumar et al. 2016), captum")
ATTRIBUTIONS.declare("smoothgrad", "solvers.attr_gradients:SmoothGrad",
                     "SmoothGrad: |gradient| averaged over 50 noisy copies, sigma 0.15, seeded, captum NoiseTunnel")
ATTRIBUTIONS.declare("guided_backprop", "solvers.attr_gradients:GuidedBackprop",
                     "Guided Backpropagation (Springenberg et al. 2015), captum")
ATTRIBUTIONS.declare("ig", "solvers.attr_ig:IntegratedGradients",
                     "Integrated Gradients, black (zero) baseline, 32 Gauss-Legendre steps, captum")
ATTRIBUTIONS.declare("ig_blur", "solvers.attr_ig:IGBlur",
                     "Integrated Gradients from a Gaussian-blurred copy of x (sigma 4 px)")
ATTRIBUTIONS.declare("ig_uniform", "solvers.attr_ig:IGUniform",
                     "Integrated Gradients from a seeded U[0,1] noise baseline")
ATTRIBUTIONS.declare("ig_gaussian", "solvers.attr_ig:IGGaussian",
                     "Integrated Gradients from x + N(0, 0.3^2) noise clipped to [0,1], seeded")
ATTRIBUTIONS.declare("ig_maxdist", "solvers.attr_ig:IGMaxDist",
                     "Integrated Gradients from the maximum-distance baseline (1 where x<0.5 else 0)")
ATTRIBUTIONS.declare("ig_multi_mean", "solvers.attr_ig:IGMultiMean",
                     "Integrated Gradients averaged over 8 seeded uniform baselines")
ATTRIBUTIONS.declare("ig_multi_median", "solvers.attr_ig:IGMultiMedian",
                     "per-pixel median of Integrated Gradients over 8 seeded uniform baselines")
ATTRIBUTIONS.declare("deeplift", "solvers.attr_deeplift:DeepLift",
                     "DeepLIFT Rescale from a black baseline (Shrikumar et al. 2017), captum")
ATTRIBUTIONS.declare("deepshap", "solvers.attr_deeplift:DeepShap",
                     "DeepSHAP: DeepLift over 32 training-image baselines drawn in fit(), captum DeepLiftShap")
ATTRIBUTIONS.declare("gradient_shap", "solvers.attr_deeplift:GradientShap",
                     "GradientSHAP / expected gradients over 32 training-image baselines, captum")
ATTRIBUTIONS.declare("gradcam", "solvers.attr_cam:GradCam",
                     "Grad-CAM on the last conv layer, bilinearly upsampled (Selvaraju et al. 2017), captum")
ATTRIBUTIONS.declare("guided_gradcam", "solvers.attr_cam:GuidedGradCam",
                     "Guided Grad-CAM: guided backprop times upsampled Grad-CAM, captum")
ATTRIBUTIONS.declare("scorecam", "solvers.attr_cam:ScoreCam",
                     "Score-CAM (Wang et al. 2020): activation masks weighted by target probability, batched")
ATTRIBUTIONS.declare("contrast_cam", "solvers.attr_cam:ContrastCam",
                     "contrastive Grad-CAM, why P rather than Q: gradient of CE(logits, Q) (Prabhushankar et al. 2020)")
ATTRIBUTIONS.declare("counterfactual_cam", "solvers.attr_cam:CounterfactualCam",
                     "counterfactual Grad-CAM, what if P were absent: negated gradients (Selvaraju et al. 2017)")
ATTRIBUTIONS.declare("occlusion", "solvers.attr_perturbation:Occlusion",
                     "Occlusion: logit drop under a sliding black 4x4 patch, stride 2, captum")
ATTRIBUTIONS.declare("lime", "solvers.attr_perturbation:Lime",
                     "LIME on 49 4x4-patch features, Lasso surrogate, 256 samples, captum")
ATTRIBUTIONS.declare("kernel_shap", "solvers.attr_perturbation:KernelShap",
                     "KernelSHAP on 49 4x4-patch features, 256 coalitions, captum")
ATTRIBUTIONS.declare("lrp_epsilon", "solvers.attr_lrp:LrpEpsilon",
                     "LRP-epsilon (Bach et al. 2015) on every conv and dense layer, R_out = the logit, zennit")
ATTRIBUTIONS.declare("lrp_epsilon_plus_flat", "solvers.attr_lrp:LrpEpsilonPlusFlat",
                     "LRP composite EpsilonPlusFlat: flat first layer, z+ convs, epsilon dense, zennit")
ATTRIBUTIONS.declare("lrp_alpha2beta1", "solvers.attr_lrp:LrpAlpha2Beta1",
                     "LRP composite EpsilonAlpha2Beta1: alpha-beta (2, 1) convs, epsilon dense, zennit")
ATTRIBUTIONS.declare("random", "solvers.attr_random:RandomAttribution",
                     "random-attribution control: seeded U[0,1) per pixel, no model access")
