"""Results of a fit: summaries, diagnostics, shrinkage."""
