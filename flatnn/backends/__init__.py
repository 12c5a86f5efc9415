"""Objectives that bind a network to data held elsewhere: a Dask cluster, a GPU."""

__all__ = ["dask_cluster", "dask_objective", "dask_shards", "gpu_objective"]
