"""Era 4: Transformers."""
