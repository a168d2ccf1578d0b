"""Era 5: Generative models."""
