"""Neural Discrete Representation Learning (van den Oord, Vinyals & Kavukcuoglu, 2017): the VQ-VAE."""
