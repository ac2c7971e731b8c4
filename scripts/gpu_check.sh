#!/usr/bin/env bash
# A prepared GPU check: the project's own GPU paths on a model of a real size, side by side
# with the plain transformers path they wrap, in one invocation. Needs only torch,
# transformers, peft and accelerate (no vLLM, no downloads): the model is a random-initialised
# Qwen2-0.5B-shaped decoder (24 layers, hidden 896, GQA 14/2 heads, vocab 151,936, bf16)
# built on the device, with a small byte-level BPE tokenizer trained on the spot.
#
#   scripts/gpu_check.sh                 # one CUDA GPU: about 3-5 minutes on an H200 (bound: 8)
#   scripts/gpu_check.sh --tiny          # a 2-layer model of the same shape family, on CPU: ~1 minute
#   scripts/gpu_check.sh --out FILE      # where the figures go (default: $OUT/gpu_check.json when
#                                        # $OUT is set, else ./gpu_check.json; a .md table beside it)
#
# Figures (each beside its peer, with the ratio):
#   generation  hf engine (arena.engines.hf, per-request seeds) tokens/s vs model.generate
#   training    nash-mp trainer steps/s and peak device memory, LoRA and full fine-tuning
#   judging     hf judge comparisons/s vs the raw batched forward over the same prompts
# Environment: PYTHON (default python3), GPU_CHECK_TIMEOUT (default 480 s).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 TRANSFORMERS_NO_ADVISORY_WARNINGS=1 TOKENIZERS_PARALLELISM=false
# Hard bound (GPU_CHECK_TIMEOUT seconds, default 480 = 8 min): the figures of the parts that
# finished are already in the output file when it strikes.
exec timeout "${GPU_CHECK_TIMEOUT:-480}" "${PYTHON:-python3}" - "$@" <<'PY'
import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

parser = argparse.ArgumentParser(prog="scripts/gpu_check.sh")
parser.add_argument("--tiny", action="store_true", help="tiny model and workload (CPU smoke run)")
parser.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
parser.add_argument("--out", default=None, help="JSON file for the figures")
args = parser.parse_args()

import torch

device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
if device.startswith("cuda") and not torch.cuda.is_available():
    sys.exit(f"gpu_check: --device {device} but torch sees no CUDA device; run with --tiny on CPU")
if not args.tiny and not device.startswith("cuda"):
    sys.exit("gpu_check: no CUDA device here; the full check needs one (run with --tiny for the CPU smoke run)")
out_path = Path(args.out or Path(os.environ.get("OUT") or ".") / "gpu_check.json")
out_path.parent.mkdir(parents=True, exist_ok=True)
cuda = device.startswith("cuda")

if args.tiny:
    ARCH = dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
    WORK = dict(gen_batch=4, prompt_words=16, new_tokens=8, train_steps=3, train_batch=2, train_new=4,
                judge_pairs=8, judge_batch=4, response_words=12)
else:  # Qwen2-0.5B's shape (https://huggingface.co/Qwen/Qwen2-0.5B/blob/main/config.json)
    ARCH = dict(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=4096)
    WORK = dict(gen_batch=32, prompt_words=64, new_tokens=64, train_steps=8, train_batch=8, train_new=32,
                judge_pairs=128, judge_batch=16, response_words=48)
DTYPE = torch.bfloat16 if cuda else torch.float32  # bf16 matmuls on CPU are slow and unrepresentative


def sync():
    if cuda:
        torch.cuda.synchronize()


def peak_reset():
    if cuda:
        torch.cuda.reset_peak_memory_stats()


def peak_gib():
    return round(torch.cuda.max_memory_allocated() / 2**30, 3) if cuda else None


WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma "
         "tau upsilon phi chi psi omega one two three four five six seven eight nine ten A B").split()


def build_checkpoint(root: Path) -> tuple[Path, int]:
    """(save_pretrained directory, parameter count): random Qwen2 weights of the full vocabulary
    size; a small byte-level BPE tokenizer (what AutoTokenizer loads for a qwen2 config).

    Token ids the tokenizer does not know decode to nothing, so generated tokens are counted
    as batch × max_new_tokens: random weights draw end-of-sequence with probability ≈ 1/V.
    """
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from trainers.tiny import build_tokenizer

    rng = __import__("numpy").random.default_rng(0)
    tok = build_tokenizer([text(rng, 40) for _ in range(200)], vocab_size=384)
    config = Qwen2Config(**ARCH, tie_word_embeddings=True, rope_theta=1e6, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id)
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2ForCausalLM(config).to(DTYPE)
    path = root / "qwen2-random"
    model.save_pretrained(path)
    tok.save_pretrained(path)
    n_params = sum(p.numel() for p in model.parameters())
    del model
    return path, n_params


def text(rng, n):
    return " ".join(WORDS[int(i)] for i in rng.integers(0, len(WORDS), n))


def bench_generation(path: Path) -> dict:
    import numpy as np

    from arena.engines import Request, SamplingParams
    from arena.engines.hf import HFEngine
    from arena.loading import load_causal_lm

    rng = np.random.default_rng(1)
    B, T = WORK["gen_batch"], WORK["new_tokens"]
    prompts = [text(rng, WORK["prompt_words"]) for _ in range(B)]
    params = SamplingParams(max_new_tokens=T, temperature=1.0, seed=0)
    engine = HFEngine(batch_size=B, device=device)
    ckpt = SimpleNamespace(kind="hf", path=path, name="qwen2-random")
    # warm-up (CUDA context, kernels) on two requests, not timed
    list(engine.generate(ckpt, [Request(p, i) for i, p in enumerate(prompts[:2])], SamplingParams(max_new_tokens=2)))
    sync()
    t = time.perf_counter()
    model, tok = engine.load(ckpt)
    sync()
    load_s = time.perf_counter() - t
    del model
    t = time.perf_counter()
    texts = [s for batch in engine.generate(ckpt, [Request(p, 100 + i) for i, p in enumerate(prompts)], params)
             for _, s in batch]
    sync()
    engine_s = time.perf_counter() - t
    assert len(texts) == B
    engine_tokens = B * T  # see build_checkpoint

    model, tok = load_causal_lm(path, device=device)
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
    with torch.no_grad():
        model.generate(**enc, do_sample=True, max_new_tokens=2, pad_token_id=tok.pad_token_id)  # warm-up
        sync()
        t = time.perf_counter()
        gen = model.generate(**enc, do_sample=True, max_new_tokens=T, min_new_tokens=T, pad_token_id=tok.pad_token_id)
        sync()
    generate_s = time.perf_counter() - t
    generate_tokens = int((gen.shape[1] - enc["input_ids"].shape[1]) * B)
    del model
    engine_tps = engine_tokens / max(engine_s - load_s, 1e-9)
    generate_tps = generate_tokens / generate_s
    return {"batch": B, "new_tokens": T, "dtype": str(DTYPE).replace("torch.", ""),
            "hf_engine": {"tokens": engine_tokens, "seconds": round(engine_s, 3), "load_seconds": round(load_s, 3),
                          "tokens_per_s": round(engine_tps, 2)},
            "model_generate": {"tokens": generate_tokens, "seconds": round(generate_s, 3),
                               "tokens_per_s": round(generate_tps, 2)},
            "ratio_engine_over_generate": round(engine_tps / generate_tps, 3)}


def bench_training(path: Path, root: Path, lora: bool) -> dict:
    import numpy as np

    from trainers.lm import TrainConfig, train

    rng = np.random.default_rng(2)
    prompts = root / "prompts.jsonl"
    if not prompts.exists():
        prompts.write_text("".join(json.dumps({"prompt": text(rng, 24)}) + "\n" for _ in range(64)))
    judge_module = root / "gpu_check_judge.py"
    judge_module.write_text("import math\n\ndef judge(prompt, a, b):\n"
                            "    return 0.5 + 0.4 * math.tanh((len(a) - len(b)) / 40)\n")
    sys.path.insert(0, str(root))
    times = []
    config = TrainConfig(policy=str(path), judge="python:gpu_check_judge:judge", prompts=str(prompts),
                         out=str(root / f"train-{'lora' if lora else 'full'}"), steps=WORK["train_steps"],
                         batch_size=WORK["train_batch"], max_new_tokens=WORK["train_new"], eval_every=0,
                         save_every=0, device=device, lora=lora, lr=1e-5)
    peak_reset()
    t = time.perf_counter()
    train("nash-mp", config, overwrite=True, progress=lambda step, row: times.append(time.perf_counter()))
    sync()
    total = time.perf_counter() - t
    steady = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else float("nan")
    return {"algorithm": "nash-mp", "lora": lora, "steps": len(times), "batch_size": WORK["train_batch"],
            "max_new_tokens": WORK["train_new"], "seconds_total": round(total, 3),
            "steps_per_s": round(steady, 4), "peak_memory_gib": peak_gib()}


def bench_judge(path: Path) -> dict:
    import numpy as np

    from judges import Comparison, load_judge

    rng = np.random.default_rng(3)
    n, bs, w = WORK["judge_pairs"], WORK["judge_batch"], WORK["response_words"]
    comps = [Comparison(text(rng, 16), text(rng, w), text(rng, w + int(rng.integers(0, 8)))) for _ in range(n)]
    judge = load_judge(f"hf:{path}", device=device, batch_size=bs)
    judge.judge(comps[:bs])  # warm-up
    sync()
    t = time.perf_counter()
    verdicts = judge.judge(comps)
    sync()
    judge_s = time.perf_counter() - t
    failures = sum(not isinstance(v, float) for v in verdicts)
    # The peer: the same token ids through the same model, batched, last-position log-softmax only.
    ids = judge.encode(comps)
    model = judge.model
    pad = judge.tokenizer.pad_token_id
    with torch.no_grad():
        sync()
        t = time.perf_counter()
        for s in range(0, n, bs):
            chunk = ids[s:s + bs]
            L = max(map(len, chunk))
            x = torch.tensor([[pad] * (L - len(c)) + c for c in chunk], device=device)
            m = torch.tensor([[0] * (L - len(c)) + [1] * len(c) for c in chunk], device=device)
            pos = (m.cumsum(-1) - 1).clamp(min=0)
            logits = model(input_ids=x, attention_mask=m, position_ids=pos).logits[:, -1].float()
            torch.log_softmax(logits, -1).cpu()
        sync()
    raw_s = time.perf_counter() - t
    return {"comparisons": n, "batch_size": bs, "prompt_tokens_mean": round(sum(map(len, ids)) / n, 1),
            "failures": failures,
            "hf_judge": {"seconds": round(judge_s, 3), "pairs_per_s": round(n / judge_s, 2)},
            "raw_forward": {"seconds": round(raw_s, 3), "pairs_per_s": round(n / raw_s, 2)},
            "ratio_judge_over_raw": round(raw_s / judge_s, 3)}


def main() -> dict:
    import accelerate
    import peft
    import transformers

    started = time.perf_counter()
    result = {"mode": "tiny" if args.tiny else "full", "device": device,
              "device_name": torch.cuda.get_device_name(0) if cuda else platform.processor() or platform.machine(),
              "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                           "peft": peft.__version__, "accelerate": accelerate.__version__,
                           "python": platform.python_version()},
              "architecture": {"family": "Qwen2 (random init)", **ARCH}, "workload": WORK}
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        path, result["parameters"] = build_checkpoint(root)
        result["build_seconds"] = round(time.perf_counter() - t, 2)
        for name, fn in (("generation", lambda: bench_generation(path)),
                         ("training_lora", lambda: bench_training(path, root, lora=True)),
                         ("training_full", lambda: bench_training(path, root, lora=False)),
                         ("judging", lambda: bench_judge(path))):
            t = time.perf_counter()
            try:
                result[name] = fn()
            except Exception as error:  # one failing part must not hide the others' figures
                import traceback

                traceback.print_exc()
                result[name] = {"error": f"{type(error).__name__}: {error}"}
            result[name]["wall_seconds"] = round(time.perf_counter() - t, 2)
            print(f"gpu_check: {name} done in {result[name]['wall_seconds']} s", file=sys.stderr, flush=True)
            out_path.write_text(json.dumps(result, indent=2) + "\n")  # partial figures survive a timeout
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    return result


def markdown(r: dict) -> str:
    rows = [f"# gpu_check ({r['mode']}) on {r['device_name']} ({r['device']}), {r['total_seconds']} s",
            "", f"Model: {r['architecture']['family']}, {r['parameters']:,} parameters; versions {r['versions']}",
            "", "| part | ours | peer | ratio | notes |", "|---|---|---|---|---|"]
    g = r["generation"]
    if "error" not in g:
        rows.append(f"| generation ({g['dtype']}, batch {g['batch']}, {g['new_tokens']} new tokens) | hf engine "
                    f"{g['hf_engine']['tokens_per_s']} tok/s | model.generate {g['model_generate']['tokens_per_s']} tok/s "
                    f"| {g['ratio_engine_over_generate']} | engine load {g['hf_engine']['load_seconds']} s excluded |")
    for key in ("training_lora", "training_full"):
        t = r[key]
        if "error" not in t:
            rows.append(f"| {key.replace('_', ' ')} (nash-mp, batch {t['batch_size']}, {t['max_new_tokens']} tokens) "
                        f"| {t['steps_per_s']} steps/s | | | peak memory "
                        f"{'n/a (CPU)' if t['peak_memory_gib'] is None else str(t['peak_memory_gib']) + ' GiB'} |")
    j = r["judging"]
    if "error" not in j:
        rows.append(f"| judging (batch {j['batch_size']}, ~{j['prompt_tokens_mean']} tokens) | hf judge "
                    f"{j['hf_judge']['pairs_per_s']} pairs/s | raw forward {j['raw_forward']['pairs_per_s']} pairs/s "
                    f"| {j['ratio_judge_over_raw']} | |")
    for key in ("generation", "training_lora", "training_full", "judging"):
        if "error" in r[key]:
            rows.append(f"| {key} | failed: {r[key]['error']} | | | |")
    return "\n".join(rows) + "\n"


result = main()
out_path.write_text(json.dumps(result, indent=2) + "\n")
out_path.with_suffix(".md").write_text(markdown(result))
print(markdown(result))
print(f"figures written to {out_path} and {out_path.with_suffix('.md')}", file=sys.stderr)
PY
