"""Generative Adversarial Nets (Goodfellow et al., 2014)."""
