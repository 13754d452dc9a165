"""Counterfactual solvers and attribution methods, declared here (no heavy imports).

Each entry lives in its own module and registers itself with `@SOLVERS.register(name)` or
`@ATTRIBUTIONS.register(name)`; the declaration below lets `bench list` name it without
importing torch, captum or TensorFlow. Third-party packages add entries through the
entry-point groups `bench.solvers` and `bench.attributions`.
"""

from bench.registry import Registry

SOLVERS = Registry("solver")
ATTRIBUTIONS = Registry("attribution")

SOLVERS.declare("gradient", "solvers.gradient:GradientSolver",
                "white-box Wachter-style solver: CE toward target + L2 + TV on delta, Adam, batched")
SOLVERS.declare("growing_spheres", "solvers.growing_spheres:GrowingSpheres",
                "black-box Growing Spheres (Laugel et al. 2018), targeted, log-space radii, batched")
SOLVERS.declare("alibi_proto", "solvers.alibi_proto:AlibiProto",
                "alibi CounterfactualProto, prototype-guided fast regime (c_init=0), worker process")
SOLVERS.declare("alibi_proto_numgrad", "solvers.alibi_proto:AlibiProtoNumGrad",
                "alibi CounterfactualProto with the numerical-gradient prediction loss (expensive)")
SOLVERS.declare("alibi_wachter", "solvers.alibi_wachter:AlibiWachter",
                "alibi Counterfactual (Wachter et al.), numerical gradients, worker process")

# Attribution methods (ATTRIBUTIONS) are declared below.
