"""The `posenet-mlvae bench` subcommands, one module each (registered in `commands/bench.py`)."""
