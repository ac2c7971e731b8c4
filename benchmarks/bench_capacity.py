"""Benchmark: can the raters world's policy network represent π*_β at all?

Run (the world from `arena world raters --out W --prompts 100`):

    python benchmarks/bench_capacity.py --world W [--steps 300] [--lr 1e-3] [--eval-every 50]

The trainers learn π*_β from judged pairs; this script takes the judge out. It fits the
world's reference checkpoint (`W/ckpts/sft`) *directly* to π*_β from `W/nash.json`, with the
exact targets: the responses of the reference's response tree (prefixes of probability
≥ --min-prob expanded, by `trainers.lm.exact.enumerate_classes`) are grouped by
(prompt, class), and full-batch Adam minimises

    Σ_x ρ(x) Σ_c π*_β(c | x) · (−log Σ_{y ∈ tree(x), class(y) = c} π_θ(y | x)),

the cross-entropy part of KL(π*_β ‖ π_θ) over the classes. Every --eval-every steps it prints
the trainer's own figure, TV(π*_β, π_θ) over the classes enumerated on the policy's tree
(per prompt, then ρ-averaged). If this reaches a TV the trainers do not, the network and its
size are not the limit; the information in the judged pairs and the optimisation are.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--world", type=Path, required=True, help="a raters world (arena world raters --out W)")
    ap.add_argument("--steps", type=int, default=300, help="full-batch Adam steps")
    ap.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (the trainers' b04 setting)")
    ap.add_argument("--eval-every", type=int, default=50, help="steps between TV evaluations")
    ap.add_argument("--min-prob", type=float, default=1e-4, help="prefixes below this are not expanded")
    ap.add_argument("--chunk", type=int, default=2048, help="responses per forward")
    args = ap.parse_args(argv)

    from arena.lm import banned_ids
    from arena.loading import load_causal_lm
    from arena.worlds import raters
    from trainers.lm.common import encode, sequence_logprobs
    from trainers.lm.exact import enumerate_classes
    from trainers.mixture import Generation

    torch.manual_seed(0)
    nash = json.loads((args.world / "nash.json").read_text())
    prompts = nash["contexts"]
    pi_star = torch.tensor(nash["pi_star"], dtype=torch.float64)
    rho = torch.tensor(nash["weights"], dtype=torch.float64)
    X, C = pi_star.shape
    max_new = int(nash["max_new_tokens"])
    model, tok = load_causal_lm(args.world / "ckpts" / "sft")
    model.eval()
    banned = banned_ids(tok)

    leaves: list = []    # (prompt index, token ids, class) of the reference's tree
    enumerate_classes(model, tok, prompts, raters.class_of, C, max_new_tokens=max_new, min_prob=args.min_prob,
                      banned=banned, leaves=leaves)
    L, T = len(leaves), max(len(t) for _, t, _ in leaves)
    tokens = torch.full((L, T), int(tok.eos_token_id), dtype=torch.long)
    resp_mask = torch.zeros((L, T), dtype=torch.long)
    for i, (_, toks, _) in enumerate(leaves):
        tokens[i, :len(toks)] = torch.tensor(toks)
        resp_mask[i, :len(toks)] = 1
    prompt_of = torch.tensor([x for x, _, _ in leaves])
    group = prompt_of * C + torch.tensor([c for _, _, c in leaves])               # (x, c) of each response
    present = torch.zeros(X * C, dtype=torch.bool)
    present[group] = True
    weight = (rho[:, None] * pi_star).reshape(-1).float() * present                  # ρ(x) π*(c|x), 0 where no response
    ids, mask = encode(tok, prompts)
    print(f"{L} responses in the reference's tree (prefixes >= {args.min_prob:g}); π*_β mass without a response: "
          f"{float((rho[:, None] * pi_star).reshape(-1)[~present].sum()):.4f}")

    def tv() -> float:
        dist = enumerate_classes(model, tok, prompts, raters.class_of, C, max_new_tokens=max_new, min_prob=1e-4,
                                 banned=banned)
        return float((rho * 0.5 * (pi_star - dist.normalized()).abs().sum(-1)).sum())

    def log_probs() -> torch.Tensor:
        """log π_θ(y | x) of every response of the tree (the trainers' `sequence_logprobs`)."""
        return torch.cat([sequence_logprobs(model, ids[prompt_of[rows]], mask[prompt_of[rows]],
                                            Generation(tokens=tokens[rows], mask=resp_mask[rows]), banned)
                          for rows in (slice(s, s + args.chunk) for s in range(0, L, args.chunk))])

    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=args.lr)
    start = time.perf_counter()
    print(f"step 0: TV {tv():.4f}")
    for step in range(1, args.steps + 1):
        lp = log_probs()
        top = lp.detach().max()
        class_lp = torch.zeros(X * C).index_add_(0, group, torch.exp(lp - top)).clamp_min(1e-30).log() + top
        loss = -(weight * class_lp).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % args.eval_every == 0 or step == args.steps:
            print(f"step {step}: TV {tv():.4f}  cross-entropy {float(loss.detach()):.4f}  ({time.perf_counter() - start:.0f} s)",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
