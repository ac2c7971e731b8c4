"""Test-wide settings: offline, no telemetry, CPU only."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# Tiny models on a 2-core machine: one thread per process is fastest and avoids oversubscription.
os.environ.setdefault("OMP_NUM_THREADS", "1")
