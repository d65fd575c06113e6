"""The training machinery: the loop, checkpoints, distributed helpers, run logs, batches and validation."""
