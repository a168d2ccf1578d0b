"""Auto-Encoding Variational Bayes (Kingma & Welling, 2013): the variational autoencoder."""
