"""Test-wide settings: a non-interactive plot backend and offline Hugging Face."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RLCOURSE_THREADS", "1")

import torch  # noqa: E402

# One intra-op thread: the course's networks are small, and pytest-xdist runs two workers on two
# cores; more threads oversubscribe the cores and stall tests that train networks.
torch.set_num_threads(1)
