"""Improved Denoising Diffusion Probabilistic Models (Nichol & Dhariwal, 2021)."""
