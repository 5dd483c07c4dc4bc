"""Test-wide settings: a non-interactive plot backend and offline Hugging Face."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RLCOURSE_THREADS", "1")
