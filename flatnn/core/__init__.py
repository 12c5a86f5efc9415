"""The spec and its math: activations, losses (and the prediction rule), the batch
kernel, the network spec, its input checks, its evaluation (and the objective's
formula), the bound objective, gradient checking and classification metrics.
"""

__all__ = [
    "activations",
    "evaluation",
    "gradcheck",
    "inputs",
    "kernel",
    "losses",
    "metrics",
    "network",
    "objective",
]
