"""Spec + design -> PyMC model: one module per concern."""
