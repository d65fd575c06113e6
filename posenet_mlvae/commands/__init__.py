"""Subcommands of the `posenet-mlvae` console script: one module each, with add_arguments and run."""
