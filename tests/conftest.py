"""Shared pytest settings: fixed seeds and a small thread count so tests are deterministic."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")
