"""Shared by the vllm tests (registered under the name `vllm_helpers` by conftest.py)."""

import os
import socket
import subprocess
import sys

# vllm.LLM options that make vLLM start fastest on a CPU (see conftest.py).
LLM_OPTIONS = {"gpu_memory_utilization": "0.2", "enforce_eager": "true", "distributed_executor_backend": "uni"}
QUERY = "&".join(f"{k}={v}" for k, v in LLM_OPTIONS.items())


def arena_cli(*args, timeout=1200) -> subprocess.CompletedProcess:
    """`arena ARGS` in a subprocess of this interpreter: its real stdout, separate from stderr."""
    code = "import sys; from arena.cli import _entry; sys.argv[0] = 'arena'; _entry()"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1"})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
