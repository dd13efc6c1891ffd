"""Trained networks as catalog entries: a registry of allowed model classes, the checkpoint dataset
layout, and deterministic training.

``registry`` and ``layout`` need no torch (``catalog show`` uses them); ``models``, ``checkpoint``
and ``training`` import it. Nothing is imported here, so ``import tasks.nn.layout`` stays light.
"""
