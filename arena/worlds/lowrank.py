"""The contextual low-rank preference game lifted to sequences: a world with a known answer.

Tiapkin et al. 2025 ("Accelerating Nash learning from human feedback via Mirror Prox",
arXiv 2505.19731) benchmark Nash learning on P(y ≻ y' | x) = σ(A_x[y, y'] − A_x[y', y]),
A_x = scale · U Θ_x Vᵀ (`trainers.lab.games.lowrank_game`). Here each context x is a prompt,
a response is any text, and its class is a fixed function of the text
(`trainers.lm.exact.class_of_text`: its first character, letters "A", "B", ... are classes
0, 1, ...). The judge answers P_game[x, c(y), c(y')] exactly. The reference policy is a tiny
transformer fine-tuned (SFT) to answer with class letters; its exact class distribution
(next-token probabilities) is π_ref of the game, and the exact regularised Nash π*_β
(`trainers.lab.nash.regularized_nash`) is written to `nash.json`, so a trainer can report
the exact KL(π*_β ‖ π_θ) of a real transformer policy.

Layout of the world directory (same as the raters world): `ckpts/sft/`, `prompts.jsonl`,
`judge.txt` (`python:arena.worlds.lowrank:judge`), plus `nash.json`. The judge needs no
file: each prompt names the world's game parameters, from which the game is rebuilt.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from arena.errors import ConfigError, InputError

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
JUDGE_SPEC = "python:arena.worlds.lowrank:judge"
_PROMPT = re.compile(r"^lowrank (\d+) (\d+)x(\d+) r(\d+) s([0-9.eE+-]+) context (\d+)$")


@dataclass(frozen=True, kw_only=True)
class LowrankWorld:
    """Parameters of a lowrank world."""

    n_contexts: int = 8
    """Contexts (prompts) X."""
    n_actions: int = 6
    """Response classes Y (letters A, B, ...)."""
    rank: int = 2
    """Rank of A_x."""
    scale: float = 3.0
    """Scale of A_x (sharper preferences when larger)."""
    seed: int = 0
    """Seed of the game and of the reference data."""
    beta: float = 0.1
    """β of the regularised Nash written to nash.json (trainers recompute for another β)."""
    ref_scale: float = 1.0
    """Spread of the SFT data's class distribution (logits ~ N(0, ref_scale²))."""
    sft_steps: int = 300
    """SFT steps of the reference checkpoint."""

    def __post_init__(self) -> None:
        if not 2 <= self.n_actions <= len(LETTERS):
            raise ConfigError(f"n_actions must be in [2, {len(LETTERS)}]; got {self.n_actions}")
        if self.n_contexts < 1:
            raise ConfigError(f"n_contexts must be >= 1; got {self.n_contexts}")
        if not self.beta > 0:
            raise ConfigError(f"beta must be > 0; got {self.beta}")
        if not 1 <= self.rank <= self.n_actions:
            raise ConfigError(f"--rank must be in [1, n_actions = {self.n_actions}]; got {self.rank}")
        if not (math.isfinite(self.scale) and self.scale >= 0):
            raise ConfigError(f"--scale must be a finite number >= 0; got {self.scale}")
        if self.sft_steps < 1:
            raise ConfigError(f"--sft-steps must be >= 1; got {self.sft_steps}")

    @property
    def letters(self) -> str:
        return LETTERS[: self.n_actions]

    def prompt(self, x: int) -> str:
        # The context number is the prompt's last token, so the first response token is
        # predicted at a position that sees it directly (a tiny model learns that fast).
        return (f"lowrank {self.seed} {self.n_contexts}x{self.n_actions} r{self.rank} "
                f"s{self.scale:g} context {x}")


def parse_prompt(prompt: str) -> tuple[LowrankWorld, int]:
    """(world, context) named by a lowrank prompt; InputError for any other text."""
    m = _PROMPT.match(prompt.strip())
    if not m:
        raise InputError(f"not a lowrank world prompt: {prompt[:60]!r}; use the prompts.jsonl of `arena world lowrank`")
    seed, X, Y, r, s, x = m.groups()
    world = LowrankWorld(n_contexts=int(X), n_actions=int(Y), rank=int(r), scale=float(s), seed=int(seed))
    if not 0 <= int(x) < int(X):
        raise InputError(f"context {x} out of range for a world with {X} contexts")
    return world, int(x)


@lru_cache(maxsize=16)
def _game_P(n_contexts: int, n_actions: int, rank: int, scale: float, seed: int) -> np.ndarray:
    from trainers.lab.games import lowrank_game

    return lowrank_game(n_contexts, n_actions, rank, scale, seed).P


def game_matrix(world: LowrankWorld) -> np.ndarray:
    """P (X, Y, Y) of the world's game."""
    return _game_P(world.n_contexts, world.n_actions, world.rank, world.scale, world.seed)


def judge(prompt: str, response_a: str, response_b: str) -> float:
    """P(response_a ≻ response_b | prompt) = P_game[x, c(a), c(b)] (a python judge function)."""
    from trainers.lm.exact import class_of_text

    world, x = parse_prompt(prompt)
    P = game_matrix(world)
    return float(P[x, class_of_text(response_a, world.letters), class_of_text(response_b, world.letters)])


def _sft_examples(world: LowrankWorld, pi_data: np.ndarray, per_context: int = 64) -> list[tuple[str, str]]:
    """(prompt, letter) pairs whose class counts follow pi_data row by row (largest remainders)."""
    examples = []
    for x in range(world.n_contexts):
        raw = pi_data[x] * per_context
        counts = np.floor(raw).astype(int)
        for i in np.argsort(-(raw - counts))[: per_context - counts.sum()]:
            counts[i] += 1
        examples += [(world.prompt(x), world.letters[c]) for c in range(world.n_actions) for _ in range(counts[c])]
    return examples


def build_lowrank_world(out_dir: str | Path, world: LowrankWorld = LowrankWorld(), *, overwrite: bool = False) -> Path:
    """Write the world into `out_dir` atomically; returns the directory."""
    from trainers.lab.games import Game, lowrank_game
    from trainers.lab.nash import kl, regularized_nash
    from arena.lm import banned_ids
    from trainers.lm.common import class_distribution, Policy
    from trainers.lm.exact import token_classes
    from trainers.sft import SFTConfig, sft
    from trainers.tiny import build_model, build_tokenizer, save_checkpoint

    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise ConfigError(f"{out} already exists; choose another --out or pass --overwrite")
    from arena.outputs import atomic_output

    # The one atomic writer: built beside `out`, which (with --overwrite) stays until the new
    # world is complete; a killed build's temporary directory is removed by the next run.
    with atomic_output(out, mode="replace") as tmp:
        base = lowrank_game(world.n_contexts, world.n_actions, world.rank, world.scale, world.seed,
                            reference="random", ref_scale=world.ref_scale)
        prompts = [world.prompt(x) for x in range(world.n_contexts)]
        examples = _sft_examples(world, base.pi_ref)
        tok = build_tokenizer(prompts + list(world.letters), vocab_size=320)
        model = build_model(tok, seed=world.seed)
        sft(model, tok, examples, SFTConfig(steps=world.sft_steps, seed=world.seed))
        save_checkpoint(model, tok, tmp / "ckpts" / "sft")

        # π_ref of the game = the SFT model's exact class distribution (pad banned, as in the trainers)
        banned = banned_ids(tok)
        view = Policy(model=model, tokenizer=tok, lora=False, ref_params=None, banned=banned)
        token_class = token_classes(tok, world.letters)
        pi_ref = class_distribution(model, view, prompts, token_class, world.n_actions).numpy()
        pi_ref = np.maximum(pi_ref, 1e-300)
        pi_ref = pi_ref / pi_ref.sum(axis=1, keepdims=True)
        game = Game(P=base.P, pi_ref=pi_ref, weights=base.weights)
        sol = regularized_nash(game, world.beta)

        (tmp / "prompts.jsonl").write_text("".join(json.dumps({"id": str(x), "prompt": p}) + "\n"
                                                   for x, p in enumerate(prompts)))
        (tmp / "judge.txt").write_text(JUDGE_SPEC + "\n")
        nash = {
            "world": "lowrank",
            "params": asdict(world),
            "contexts": prompts,
            "classes": world.letters,
            "class_rule": "class(y) = (ord(y[0]) - ord(classes[0])) mod len(classes); class('') = 0",
            "beta": world.beta,
            "P": base.P.tolist(),
            "pi_ref": pi_ref.tolist(),
            "pi_data": base.pi_ref.tolist(),
            "weights": base.weights.tolist(),
            "pi_star": sol.pi.tolist(),
            "gap": sol.gap,
            "residual": sol.residual,
            "kl_star_ref": float(np.dot(base.weights, kl(sol.pi, pi_ref))),
        }
        (tmp / "nash.json").write_text(json.dumps(nash) + "\n")
    return out
