"""Frequentist fits of the same models and side-by-side tables."""
