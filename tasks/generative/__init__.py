"""Generative models for the MAD study: fitting, sampling with bias λ, loop mixing, metrics.

``gaussian`` holds the self-consuming loop of "Self-Consuming Generative Models Go MAD" on a
Gaussian (fully synthetic, synthetic augmentation and fresh data loops), its exact moment
recursions and the Wasserstein-2 distance between Gaussians. Pure numpy/xarray: no Prefect,
no catalog, no I/O.
"""
