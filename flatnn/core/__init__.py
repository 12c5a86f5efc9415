"""The spec and its math: activations, losses, the batch kernel, the network
spec, the objective, gradient checking and classification metrics.
"""

__all__ = ["activations", "gradcheck", "kernel", "losses", "metrics", "network", "objective"]
