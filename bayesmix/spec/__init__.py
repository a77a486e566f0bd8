"""What the user asked for: formula terms, family, priors, data checks."""
