"""The openai judge and engine against a local `vllm.entrypoints.openai.api_server` (127.0.0.1),
started and stopped here, against offline vLLM on the same checkpoint."""

import json
import os
import subprocess
import sys
import time
import types

import pytest
from vllm_helpers import LLM_OPTIONS, QUERY, free_port

from arena.engines import Request, SamplingParams, get_engine
from judges import judge_both_orders, load_judge

STARTUP_S = 600  # the server imports vLLM and loads the model: 1-3 min on 2 busy cores


@pytest.fixture(scope="module")
def server(judge_lm_dir, tmp_path_factory):
    import httpx

    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(judge_lm_dir),
           "--served-model-name", "tiny", "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32",
           "--gpu-memory-utilization", LLM_OPTIONS["gpu_memory_utilization"], "--enforce-eager",
           "--distributed-executor-backend", "uni", "--max-logprobs", "1000", "--load-format", "safetensors"]
    with open(log, "w") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vLLM server exited with {proc.returncode}; log:\n{log.read_text()[-3000:]}")
            try:
                httpx.get(url + "/models", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    pytest.fail(f"vLLM server not up within {STARTUP_S} s; log:\n{log.read_text()[-3000:]}")
                time.sleep(2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_vllm_server_logprobs_match_offline_vllm_and_feed_the_openai_judge(server, judge_lm_dir, comparisons):
    import math

    import httpx
    from transformers import AutoConfig

    # Every token's log-probability, so both labels are always among them. Not more than the
    # vocabulary: vLLM 0.32 (CPU) then fails in torch.topk and the whole server shuts down.
    vocab = AutoConfig.from_pretrained(judge_lm_dir).vocab_size
    # The server's own numbers: ℓ_A, ℓ_B of the exact label tokens after the judge prompt.
    served = []
    for text in load_judge(f"hf:{judge_lm_dir}").texts(comparisons):
        r = httpx.post(server + "/completions", json={"model": "tiny", "prompt": text, "max_tokens": 1,
                                                      "temperature": 0, "logprobs": vocab}, timeout=120)
        r.raise_for_status()
        top = r.json()["choices"][0]["logprobs"]["top_logprobs"][0]
        served.append(1 / (1 + math.exp(top["B"] - top["A"])))
    offline = load_judge(f"vllm:{judge_lm_dir}?dtype=float32&{QUERY}").judge(comparisons)
    assert max(abs(a - b) for a, b in zip(served, offline)) < 1e-4
    assert max(served) - min(served) > 0.1
    # The openai judge end to end on that server. It sums label variants (" A", "[[A", ...),
    # which the offline judge does not, so its probabilities differ from the offline ones.
    judge = load_judge(f"openai:{server}#tiny", mode="completions", top_logprobs=vocab, max_concurrency=2,
                       timeout=120)
    verdicts = judge_both_orders(judge, comparisons)
    assert judge.diagnostics()["from_logprobs"] == 2 * len(comparisons)  # every verdict from logprobs
    assert all(v.error is None and 0 < v.p_ab < 1 for v in verdicts)


def test_openai_engine_on_vllm_server_matches_offline_vllm(server, judge_lm_dir):
    params = SamplingParams(max_new_tokens=12, temperature=1.0, seed=0)
    requests = [Request(p, seed) for p, seed in [("What is two plus two?", 11), ("Name a colour.", 12),
                                                 ("What is two plus two?", 13), ("Name a colour.", 14)]]
    served = get_engine("openai", base_url=server, concurrency=2)
    served.check()
    ckpt = types.SimpleNamespace(name="tiny", kind="hf", path=judge_lm_dir)
    a = dict(x for batch in served.generate(ckpt, requests, params) for x in batch)
    # Offline vLLM in a fresh process: an LLM built earlier in this one keeps its memory, and
    # vLLM on CPU counts that against a new LLM's share ("requested memory for kv (-0.03/4.57 GiB)").
    code = ("import json, sys, types; from arena.engines import Request, SamplingParams, get_engine; "
            "a = json.loads(sys.argv[1]); e = get_engine('vllm', llm_options=a['options']); "
            "c = types.SimpleNamespace(name='tiny', kind='hf', path=a['path']); "
            "r = [Request(p, s) for p, s in a['requests']]; "
            "print(json.dumps(dict(x for b in e.generate(c, r, SamplingParams(**a['params'])) for x in b)))")
    payload = {"options": {**LLM_OPTIONS, "dtype": "float32"}, "path": str(judge_lm_dir),
               "requests": [[r.prompt, r.seed] for r in requests],
               "params": {"max_new_tokens": 12, "temperature": 1.0, "seed": 0}}
    run = subprocess.run([sys.executable, "-c", code, json.dumps(payload)], capture_output=True, text=True,
                         timeout=1200)
    assert run.returncode == 0, run.stderr[-3000:]
    b = {int(k): v for k, v in json.loads(run.stdout).items()}
    assert sorted(a) == sorted(b) == list(range(4))
    assert a == b  # same seeds, same model, same sampler: the same text served or offline
    assert len(set(a.values())) > 1  # the seeds matter (a fixed output would pass the line above)
