"""Nash-MP, the practical deep version (Tiapkin et al. 2025, "Accelerating Nash learning
from human feedback via Mirror Prox", arXiv 2505.19731; later versions: Nash Prox).

An online policy θ and a target θ_target, an exponential moving average of θ
(θ_target ← κ θ + (1 − κ) θ_target after each step). Each step minimises

    L(θ) = E_x E_{y, y' ~ π_θ} [ −P(y ≻ y' | x) + β log(π_θ(y)/π_ref(y)) + (β/η) log(π_θ(y)/π_target(y)) ]

with one judgment per pair serving both samples (symmetrisation; the baseline ½ is exact):
see `trainers.losses.nash_mp_loss`. κ = 1 makes the target the current policy, i.e.
regularised self-play (`trainers.lm.self_play`).

`--explore M` adds M responses per prompt drawn from π_θ at `--explore-temperature` τ,
each judged against the K on-policy samples (an unbiased estimate of P(y ≻ π_θ)), and a
regression of their log-probabilities onto the same Mirror Prox target
(`trainers.losses.explore_regression_loss`), which vanishes where the PG term's does. A
policy gradient moves a response class's logit in proportion to how often π_θ samples it;
at small β, π*_β keeps classes that π_ref gives under 1 %, and the explorers sample them.

`--explore-first reference-top` starts the explorers instead with first tokens drawn from
π_ref's likeliest (two continuations each, from π_θ) and regresses the step in two factors,
grouped by first token: each continuation onto the step's conditional
(`continuation_regression_loss`) and each first token onto its marginal, the soft maximum
of its continuations' targets (`opening_regression_loss`). A full-sequence regression or a
policy gradient lowers a rare opening whose continuations mostly lose before the winning
continuation is learnt; the factored step raises it.

A winning answer can sit two tokens deep, behind an opening whose usual continuations lose
(raters world, β = 0.01: "97." for "Repeat the number 97.", π_ref 3.6e-4).
`--explore-second-temperature` draws the explorers' second token hotter (the openings' weights
use that proposal), and `--explore-opponents J` judges each explorer against J of the K
samples: one query per new explorer text at J = 1, which pays for the wider search.

`--explore-floor C` stops the openings' regression from lowering an opening below e^-C of its
π_ref probability. At small β the step lowers a losing opening without end (π*_β gives it
e^(−ΔP/β) of π_ref's weight), and the network moves one token's logit on prompts it tells
apart only in part: raters world, second build, " 11" opens the winner of "Repeat the number
11." and a loser of "… 94.", and sank on both. Held at the floor, the losers stop pulling; the
mass held back is at most e^-C.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from trainers.lm.options import Schedule, check_at_least, check_rate, option, parse_schedules

if TYPE_CHECKING:
    import torch

    from trainers.lm.common import TrainConfig
    from trainers.lm.run import Run

NAME = "nash-mp"
HELP = "Nash-MP (Mirror Prox, practical): EMA target, KL to reference and target, symmetrised PG."

ETA = option(None, shown="2β", help="Step η: the KL to the target weighs β/η.",
             why="the largest step for which Mirror Prox converges linearly (arXiv 2505.19731); a larger η warns.")
SAMPLES_PER_PROMPT = option(2, help="K responses per prompt, every pair judged, leave-one-out opponents.",
                            why="one judged pair per prompt, the paper's estimator; K > 2 judges K(K−1)/2 pairs per prompt.")


EXPLORE_FIRST = ("policy", "reference-top")


@dataclass(frozen=True, kw_only=True)
class Options:
    """Options of Nash-MP (`arena train nash-mp`)."""

    eta: float | None = ETA
    kappa: Schedule = option(Schedule("constant", 0.1), help="Target EMA rate κ: a number or harmonic:C (C/(k+C)).",
                             why="converged in the lowrank world; κ = 1 is self-play (no extrapolation).")
    samples_per_prompt: int = SAMPLES_PER_PROMPT
    explore: int = option(0, help="M more responses per prompt from π_θ at --explore-temperature, judged against "
                                  "the K samples (or --explore-opponents of them); their log-probs regress onto the "
                                  "Mirror Prox target (sampled with hf under --use-vllm).",
                          why="off: the paper's estimator. Raters world, β = 0.01: 4 with --judge-cache lowered TV at "
                              "twice the queries; with --explore-first reference-top it also stopped most of the "
                              "styles' collapse (docs/trainers.md).")
    explore_temperature: float = option(1.25, help="Sampling temperature of the --explore responses (> 1 flattens).",
                                        why="raters world, β = 0.01, K = 6, M = 4, cache: the first 60 steps cost 2,786 "
                                            "more queries at 1.25 and 4,967 at 1.5; at 2 the explorers are mostly wrong "
                                            "or malformed (mean preference 0.21), each a new query.")
    explore_first: str = option("policy", help="The explorers' first token: policy (sampled from π_θ like the rest) or "
                                               "reference-top (⌈M/2⌉ distinct tokens drawn uniformly from π_ref's "
                                               "--explore-first-pool likeliest first tokens, two explorers each; π_θ "
                                               "continues; the step regresses in two factors, first token and "
                                               "continuation, grouped by first token).",
                                why="policy keeps the measured --explore. Raters world, β = 0.01, M = 4, τ = 1, 4,000 "
                                    "steps: reference-top left a kept style below 1 % on 0–1 % of prompts, policy "
                                    "on 4–24 % (docs/trainers.md).")
    explore_first_pool: int = option(8, help="With --explore-first reference-top: how many of π_ref's likeliest first "
                                             "tokens the explorers' first tokens are drawn from (≥ ⌈M/2⌉).",
                                     why="raters world: π_ref ranks a style's opening 5th on some prompts (list on "
                                         "'Repeat the number 42.'), so the pool is twice the measured M = 4. On another "
                                         "build of the world one opening ranks 9th: 10 with --explore-floor 5 reaches it "
                                         "within the budget; without the floor it climbs too slowly (docs/trainers.md).")
    explore_second_temperature: float | None = option(
        None, shown="--explore-temperature",
        help="Sampling temperature of the explorers' second token (under --explore-first reference-top the first "
             "their continuation draws: > 1 finds a winning answer two tokens deep sooner); the rest at "
             "--explore-temperature.",
        why="the same as the rest (measured on one world only). Raters world, β = 0.01, K = 6, M = 4, "
            "reference-top: 2 with --explore-opponents 1 found prompt 97's answer two tokens deep in time on 4 seeds "
            "of 6 (1 of 3 without) and then left no style collapsed, in 13,754–13,978 queries; against all K, 2 "
            "had cost 18,400 by step 1,000. With --explore-floor it cost 21,184 queries in 1,000 steps, so the "
            "floor's recipe leaves it at τ (docs/trainers.md).")
    explore_opponents: int | None = option(
        None, shown="K",
        help="How many of the K samples each explorer is judged against (explorer m against samples m, m+1, … "
             "mod K); its score, their mean, estimates P(y ≻ π_θ) without bias either way.",
        why="all K: the lowest-variance score. Raters world, β = 0.01: 1 makes a new explorer text one query, "
            "which pays for --explore-second-temperature 2 within 3× the demo's budget (docs/trainers.md).")
    explore_floor: float | None = option(
        None, shown="none",
        help="With --explore-first reference-top: C > 0 stops lowering an opening once π_θ gives it under "
             "e^-C π_ref (the openings' regression pulls a loser down to that floor and no further); "
             "the mass so held back is at most e^-C.",
        why="none: off, like the other explorer options, until measured beyond one world. Raters world "
            "(second build), β = 0.01, with --explore-first-pool 10 and the second token at τ: 5 left no style "
            "collapsed on 6 seeds of 6 in 1,000 steps and 9,194–9,559 queries (3 and 8 on seed 0 too); without "
            "it 42 % of prompts collapsed (docs/trainers.md).")

    def __post_init__(self) -> None:
        from arena.errors import ConfigError

        parse_schedules(self, "kappa")
        check_rate(self, "kappa")
        if self.eta is not None and not self.eta > 0:
            raise ConfigError(f"--eta must be > 0; got {self.eta}")
        check_at_least(self, ("samples_per_prompt",), 2, " (a sample needs an opponent)")
        check_at_least(self, ("explore",), 0)
        if not self.explore_temperature > 0:
            raise ConfigError(f"--explore-temperature must be > 0; got {self.explore_temperature}")
        if self.explore_first == "reference-top" and not (self.explore + 1) // 2 <= self.explore_first_pool:
            raise ConfigError(f"--explore-first-pool must be at least ⌈--explore / 2⌉ = {(self.explore + 1) // 2}; "
                              f"got {self.explore_first_pool}")
        if self.explore_second_temperature is not None and not self.explore_second_temperature > 0:
            raise ConfigError(f"--explore-second-temperature must be > 0; got {self.explore_second_temperature}")
        if self.explore_opponents is not None and not 1 <= self.explore_opponents <= self.samples_per_prompt:
            raise ConfigError(f"--explore-opponents must be between 1 and --samples-per-prompt = "
                              f"{self.samples_per_prompt}; got {self.explore_opponents}")
        if self.explore_floor is not None and not self.explore_floor > 0:
            raise ConfigError(f"--explore-floor must be > 0 (nats below π_ref); got {self.explore_floor}")
        if self.explore_floor is not None and self.explore_first != "reference-top":
            raise ConfigError("--explore-floor acts on the openings' regression of --explore-first reference-top; "
                              "add --explore-first reference-top or drop --explore-floor")
        if self.explore_first not in EXPLORE_FIRST:
            raise ConfigError(f"--explore-first must be one of {', '.join(EXPLORE_FIRST)}; got {self.explore_first!r}")

    def resolve(self, *, beta: float) -> "Options":
        """η = 2β when not given (the default is a function of β)."""
        return self if self.eta is not None else dataclasses.replace(self, eta=2.0 * beta)

    def check_policy(self, policy) -> None:
        """Called by `Run` with the loaded policy, before any file is written: the pool of
        --explore-first reference-top must fit in the vocabulary."""
        from arena.errors import ConfigError

        allowed = len(policy.tokenizer) - len(policy.banned)
        if self.explore and self.explore_first == "reference-top" and self.explore_first_pool > allowed:
            raise ConfigError(f"--explore-first-pool {self.explore_first_pool} is larger than the {allowed} first "
                              "tokens the policy's vocabulary allows; give a smaller pool")


SELF_PLAY_ETA = 1.0
"""η passed to the loss in self-play, where it plays no part: the target is θ itself, so the
KL-to-target term is 0 with zero gradient whatever its weight β/η."""


def train(config: TrainConfig, *, overwrite: bool = False, resume: bool = False, progress=None, accelerator=None,
          algorithm: str = NAME) -> Path:
    import warnings

    from trainers.lm.common import ema_, eta_warning
    from trainers.lm.run import Run

    if algorithm == "nash-mp" and (message := eta_warning(config)) is not None:
        warnings.warn(message, UserWarning, stacklevel=2)
    run = Run(algorithm, config, overwrite=overwrite, resume=resume, progress=progress, accelerator=accelerator)
    policy = run.policy
    opts = config.options
    target = run.extra.setdefault("target", policy.copy_trainable())       # EMA of the trainable tensors
    self_play = algorithm == "self-play"
    for step in range(run.start, config.steps):
        for _ in run.micro_batches():
            if opts.samples_per_prompt > 2 or getattr(opts, "explore", 0):
                _group_micro_batch(run, step, target, self_play)
            else:
                _pair_micro_batch(run, step, target, self_play)
        grad_norm = run.step(step)
        if grad_norm is None:                # every judgment of the step failed: no update
            run.end_step(step, anchor=target)
            continue
        # move the target
        kappa = 1.0 if self_play else opts.kappa(step)
        ema_(target, policy, kappa)
        run.end_step(step, anchor=target, grad_norm=grad_norm, kappa=kappa)
    return run.finish()


def _pair_micro_batch(run: Run, step: int, target: dict[str, torch.Tensor], self_play: bool) -> None:
    """Backward of one micro-batch with two samples per prompt, one judged pair (`nash_mp_loss`)."""
    import torch

    from trainers.lm.common import sequence_logprob
    from trainers.losses import nash_mp_loss
    from trainers.mixture import Generation

    config, policy = run.config, run.policy
    # sample: two responses per prompt from the current policy
    prompts = run.batch(step)
    ids, mask = run.encode(prompts)
    gen = run.sample(policy.model, torch.cat([ids, ids]), torch.cat([mask, mask]), run.uniforms(step, 1, copies=2))
    texts = run.texts(gen)
    n = len(prompts)
    # judge: one query per pair
    pref, ok = run.judge_pairs(prompts, texts[:n], texts[n:], step)
    if run.judged == 0:                  # every judgment of the micro-batch failed: no backward
        return
    ok, weight = run.loss_rows(ok)
    # loss: log-probs of both samples under θ (with grad), π_ref and π_target
    ids2, mask2 = torch.cat([ids, ids]), torch.cat([mask, mask])
    keep = torch.cat([ok, ok])
    lp = run.token_logprobs(run.model, ids2, mask2, gen)[keep]                    # (2B', T, V)
    with torch.no_grad():
        lp_ref = run.token_logprobs(policy.reference(), ids2, mask2, gen)[keep]
        lp_tgt = lp.detach() if self_play else run.token_logprobs(policy.view(target), ids2, mask2, gen)[keep]
    kept = Generation(tokens=gen.tokens[keep], mask=gen.mask[keep])
    logp = sequence_logprob(lp, kept)                                             # (2B',)
    m = int(ok.sum())
    parts = nash_mp_loss(logp[:m], logp[m:], pref[ok], run.kl_term(lp, lp_ref, kept),
                         run.kl_term(lp, lp_tgt, kept), beta=config.beta,
                         eta=SELF_PLAY_ETA if self_play else config.options.eta)
    run.backward(weight * parts.loss, parts, pref_mean=float(pref[ok].mean()),
                 response_tokens=float(gen.mask.sum(-1).float().mean()))


def _group_micro_batch(run: Run, step: int, target: dict[str, torch.Tensor], self_play: bool) -> None:
    """Backward of one micro-batch with K ≥ 2 samples per prompt, every pair judged (`nash_mp_group_loss`),
    and with `--explore M` the M explorers' regression (`explore_regression_loss`)."""
    import itertools

    import torch

    from trainers.lm.common import sequence_logprob
    from trainers.losses import explore_regression_loss, leave_one_out_score, mirror_prox_target, nash_mp_group_loss
    from trainers.mixture import Generation

    config, policy = run.config, run.policy
    K, M = config.options.samples_per_prompt, getattr(config.options, "explore", 0)
    J = getattr(config.options, "explore_opponents", None) or K                  # opponents per explorer
    eta = SELF_PLAY_ETA if self_play else config.options.eta
    prompts = run.batch(step)
    n = len(prompts)
    ids, mask = run.encode(prompts)
    idsK, maskK = torch.cat([ids] * K), torch.cat([mask] * K)                     # (K·B, L), copy-major
    gen = run.sample(policy.model, idsK, maskK, run.uniforms(step, 1, copies=K))
    texts = run.texts(gen)
    pairs = list(itertools.combinations(range(K), 2))
    first = [texts[i * n + b] for i, _ in pairs for b in range(n)]
    second = [texts[j * n + b] for _, j in pairs for b in range(n)]
    if M:   # explorers, each judged against J of the on-policy samples, in the same call (one failure count)
        idsM, maskM = torch.cat([ids] * M), torch.cat([mask] * M)
        first_x = reference_top_first(run, step, ids, mask, M) if config.options.explore_first == "reference-top" else None
        gen_x = run.sample(policy.model, idsM, maskM, run.uniforms(step, 10, copies=M),
                           temperature=explore_temperatures(config.options), first=first_x)
        texts_x = run.texts(gen_x)
        first += [texts_x[m * n + b] for m in range(M) for _ in range(J) for b in range(n)]
        second += [texts[(m + i) % K * n + b] for m in range(M) for i in range(J) for b in range(n)]
    pref, ok = run.judge_pairs([p for _ in range(len(first) // n) for p in prompts], first, second, step)
    if run.judged == 0:                  # every judgment of the micro-batch failed: no backward
        return
    P = len(pairs) * n
    pref, pref_x = pref[:P], pref[P:]
    ok = ok[:P].view(len(pairs), n).T.all(1) & ok[P:].view(M * J, n).T.all(1)    # (B,)
    pref = pref.view(len(pairs), n).T                                            # (B, pairs)
    ok, weight = run.loss_rows(ok)
    keep = ok.repeat(K)                                                          # copy-major rows
    lp = run.token_logprobs(run.model, idsK, maskK, gen)[keep]                   # (K·B', T, V)
    with torch.no_grad():
        lp_ref = run.token_logprobs(policy.reference(), idsK, maskK, gen)[keep]
        lp_tgt = lp.detach() if self_play else run.token_logprobs(policy.view(target), idsK, maskK, gen)[keep]
    kept = Generation(tokens=gen.tokens[keep], mask=gen.mask[keep])
    m = int(ok.sum())
    logp = sequence_logprob(lp, kept).view(K, m).T                               # (B', K)
    # KL terms reordered prompt-major to match logp.reshape(-1)
    order = torch.arange(K * m).view(K, m).T.reshape(-1)
    kl_ref, kl_tgt = run.kl_term(lp, lp_ref, kept), run.kl_term(lp, lp_tgt, kept)
    kl_ref, kl_tgt = (type(t)(surrogate=t.surrogate[order], value=t.value[order]) for t in (kl_ref, kl_tgt))
    score = leave_one_out_score(pref[ok])
    parts = nash_mp_group_loss(logp, score, kl_ref, kl_tgt, beta=config.beta, eta=eta)
    loss, logged = parts.loss, {}
    if M:
        keep_x = ok.repeat(M)
        kept_x = Generation(tokens=gen_x.tokens[keep_x], mask=gen_x.mask[keep_x])
        ids_x, mask_x = idsM[keep_x], maskM[keep_x]
        score_x = pref_x.view(M, J, n)[:, :, ok].mean(1).T.detach()             # (B', M): mean over its J opponents
        if config.options.explore_first == "reference-top":
            reg = _factored_regression(run, target, self_play, (lp, lp_ref, lp_tgt, kept, score),
                                       (ids_x, mask_x, kept_x, score_x), K, M, m, eta)
        else:
            logp_x = run.logprobs(run.model, ids_x, mask_x, kept_x).view(M, m).T                   # (B', M)
            with torch.no_grad():
                ref_x = run.logprobs(policy.reference(), ids_x, mask_x, kept_x).view(M, m).T
                tgt_x = logp_x.detach() if self_play else \
                    run.logprobs(policy.view(target), ids_x, mask_x, kept_x).view(M, m).T
                t_on = mirror_prox_target(score, sequence_logprob(lp_ref, kept).view(K, m).T,
                                          sequence_logprob(lp_tgt, kept).view(K, m).T, beta=config.beta, eta=eta)
                t_x = mirror_prox_target(score_x, ref_x, tgt_x, beta=config.beta, eta=eta)
            reg = explore_regression_loss(torch.cat([logp, logp_x], 1), torch.cat([t_on, t_x], 1),
                                          beta=config.beta, eta=eta)
        loss = loss + reg
        logged = {"explore_loss": float(reg.detach()), "explore_pref": float(score_x.mean()),
                  "explore_tokens": float(kept_x.mask.sum(-1).float().mean())}
    run.backward(weight * loss, parts, pref_mean=float(pref[ok].mean()),
                 response_tokens=float(gen.mask.sum(-1).float().mean()), **logged)


def _factored_regression(run: Run, target, self_play: bool, on, explorers, K: int, M: int, m: int, eta: float):
    """`--explore-first reference-top`: the Mirror Prox step regressed in two factors over the K
    samples and the M explorers of each prompt, grouped by first token: the continuations onto
    the step's conditional (`continuation_regression_loss`), the first tokens onto its marginal
    (`opening_regression_loss`)."""
    import torch

    from trainers.lm.common import sequence_logprob, tempered_logprobs
    from trainers.losses import continuation_regression_loss, mirror_prox_target, opening_regression_loss
    from trainers.mixture import Generation

    lp, lp_ref, lp_tgt, kept, score = on
    ids_x, mask_x, kept_x, score_x = explorers
    policy, beta = run.policy, run.config.beta
    lp_x = run.token_logprobs(run.model, ids_x, mask_x, kept_x)
    with torch.no_grad():
        lp_ref_x = run.token_logprobs(policy.reference(), ids_x, mask_x, kept_x)
        lp_tgt_x = lp_x.detach() if self_play else run.token_logprobs(policy.view(target), ids_x, mask_x, kept_x)

    def rest(gen):     # the response after its first token: its mask without position 0
        return Generation(tokens=gen.tokens, mask=gen.mask * (torch.arange(gen.mask.shape[1]) > 0).to(gen.mask))

    def by_prompt(values, copies):   # (copies·B',) copy-major -> (B', copies)
        return values.view(copies, m).T

    def target_of(logprobs_ref, logprobs_tgt, gen, scores, copies):     # T over the positions gen.mask keeps
        return mirror_prox_target(scores, by_prompt(sequence_logprob(logprobs_ref, gen), copies),
                                  by_prompt(sequence_logprob(logprobs_tgt, gen), copies), beta=beta, eta=eta)

    logp_rest = torch.cat([by_prompt(sequence_logprob(lp, rest(kept)), K),
                           by_prompt(sequence_logprob(lp_x, rest(kept_x)), M)], 1)
    def openings(logprobs, logprobs_x):   # (B', K + M): the log-probability of each response's first token
        return torch.cat([by_prompt(logprobs[:, 0].gather(-1, kept.tokens[:, :1].to(lp.device)).squeeze(-1), K),
                          by_prompt(logprobs_x[:, 0].gather(-1, kept_x.tokens[:, :1].to(lp.device)).squeeze(-1), M)],
                         1)

    logp_first = openings(lp, lp_x)
    with torch.no_grad():
        t_rest = torch.cat([target_of(lp_ref, lp_tgt, rest(kept), score, K),
                            target_of(lp_ref_x, lp_tgt_x, rest(kept_x), score_x, M)], 1)
        t_whole = torch.cat([target_of(lp_ref, lp_tgt, kept, score, K),
                             target_of(lp_ref_x, lp_tgt_x, kept_x, score_x, M)], 1)
        # the continuations' proposal: π_θ for the samples, π_θ at the explorers' temperatures for them
        temperature = explore_temperatures(run.config.options)
        q_x = logp_rest[:, K:].detach() if temperature == 1 else \
            by_prompt(sequence_logprob(tempered_logprobs(lp_x.detach(), temperature), rest(kept_x)), M)
        log_q = torch.cat([logp_rest[:, :K].detach(), q_x], 1)
        c = run.config.options.explore_floor
        floor = None if c is None else openings(lp_ref, lp_ref_x) - c     # log π_ref of each opening, less C
    groups = torch.cat([by_prompt(kept.tokens[:, 0], K), by_prompt(kept_x.tokens[:, 0], M)], 1).to(logp_rest.device)
    return (continuation_regression_loss(logp_rest, t_rest, groups, beta=beta, eta=eta)
            + opening_regression_loss(logp_first, t_whole - log_q, groups, beta=beta, eta=eta, floor=floor))


def explore_temperatures(options) -> float | tuple[float, float, float]:
    """The explorers' temperatures as `arena.lm.sample` takes them: --explore-temperature, and
    --explore-second-temperature for the second token when it differs."""
    tau, second = options.explore_temperature, options.explore_second_temperature
    return tau if second is None or second == tau else (tau, second, tau)


def reference_top_first(run: Run, step: int, ids, mask, M: int):
    """(M·B,) copy-major first tokens of the explorers under `--explore-first reference-top`: for
    each prompt, ⌈M/2⌉ distinct tokens drawn uniformly from π_ref's `--explore-first-pool`
    likeliest first tokens (banned tokens excluded), explorer m starting with token m // 2 (two
    continuations per opening, so that `continuation_regression_loss` has a group to centre)."""
    import torch

    from trainers.mixture import Generation

    pool_size = run.config.options.explore_first_pool
    B = len(ids)
    probe = Generation(tokens=torch.zeros((B, 1), dtype=torch.long, device=ids.device),
                       mask=torch.ones((B, 1), dtype=torch.long, device=ids.device))
    with torch.no_grad():
        first = run.token_logprobs(run.policy.reference(), ids, mask, probe)[:, 0]      # (B, V)
    pool = torch.topk(first, pool_size, dim=-1).indices                          # (B, N)
    keys = run.uniforms(step, 11, copies=pool_size)[:, 0].view(pool_size, B).T.to(pool.device)   # (B, N)
    chosen = pool.gather(1, keys.argsort(-1)[:, :(M + 1) // 2])                  # a uniform subset of the pool
    return chosen.repeat_interleave(2, dim=1)[:, :M].T.reshape(-1)                # (M·B,) copy-major
