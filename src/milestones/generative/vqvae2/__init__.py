"""Generating Diverse High-Fidelity Images with VQ-VAE-2 (Razavi, van den Oord & Vinyals, 2019)."""
