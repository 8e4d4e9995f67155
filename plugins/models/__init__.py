"""Built-in autoencoder architectures."""
