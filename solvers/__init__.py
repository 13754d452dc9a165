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
