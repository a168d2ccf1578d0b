"""Denoising Diffusion Probabilistic Models (Ho, Jain & Abbeel, 2020)."""
