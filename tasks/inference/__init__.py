"""Amortized posterior inference (issue 13, ASPIRE): conditional normalizing flows (``cnf``) and the
stylized linear-Gaussian problem with a known posterior.

``stylized`` needs numpy only; ``cnf`` imports torch and zuko. Nothing is imported here.
"""
