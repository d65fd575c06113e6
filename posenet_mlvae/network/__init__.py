"""The network: the ML-VAE with its encoders and decoder, the pose head and the losses."""
