"""posenet-mlvae: object viewpoint from grouped images with a Multi-Level VAE (the application layer)."""

__version__ = "0.1.0"
