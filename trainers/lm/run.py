"""The setup and bookkeeping around a trainer loop: load, resume, log, evaluate, save.

A trainer writes its own loop (sample, judge, loss, backward) over the micro-batches of each
step (`Run.micro_batches`, `--grad-accum` of them), then `Run.step` clips and steps once, and
`Run.end_step` writes `metrics.jsonl`, evaluates the win rate against the previous target and
the exact KL to a known Nash, saves the resume state, and reports progress.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import torch

from arena.errors import ConfigError
from trainers.lm import common as C
from trainers.losses import LossParts


class Run:
    """State of one training run (created by `Run.setup`)."""

    def __init__(self, algorithm: str, config: C.TrainConfig, *, overwrite: bool = False, resume: bool = False,
                 progress: C.Progress | None = None, accelerator=None):
        from judges import load_judge

        if accelerator is not None and getattr(accelerator.distributed_type, "value", None) == "DEEPSPEED":
            # Accelerate's DeepSpeed wrapper steps the optimiser inside backward: that breaks
            # --grad-accum and this loop's own clip and step (tests/trainers/lm/test_deepspeed.py).
            raise ConfigError("the trainers do not run under DeepSpeed (accelerate launch --use_deepspeed): "
                                "launch with --use_fsdp (sharded) or plain data parallel instead (docs/scaling.md)")
        self.algorithm = algorithm
        self.config = config
        self.progress = progress
        self.accelerator = accelerator
        self.rank = accelerator.process_index if accelerator is not None else 0
        self.world = accelerator.num_processes if accelerator is not None else 1
        self.micro = 0                                   # micro-batch of the step (Run.micro_batches)
        self.rows = C.shard(config.batch_size, self.rank, self.world)
        self._backwards: list[tuple[LossParts | None, dict]] = []
        self.prompts = C.read_prompts(config.prompts)
        from trainers.lm.criteria import criteria_judge

        self.judge = criteria_judge(load_judge(config.judge), config.criteria_weights)  # checked before any work
        self.out, self.work = C.prepare_out(config, overwrite=overwrite, resume=resume, create=False)
        self.policy = C.load_policy(config)
        if (check := getattr(config.options, "check_policy", None)) is not None:
            check(self.policy)                       # options that depend on the policy, e.g. its vocabulary
        self.known = C.load_known_nash(config, self.policy.tokenizer)
        # The policy's samples: hf, or vLLM with --use-vllm (synced after every update in `step`).
        self.sampler = C.make_sampler(config, self.policy, world=self.world)
        state = C.load_state(self.work, config) if resume else None
        if self.rank == 0:  # only after every input loaded: bad input writes nothing
            if not resume:   # a fresh run starts from an empty work dir (--overwrite: old state gone)
                shutil.rmtree(self.work, ignore_errors=True)
            self.work.mkdir(parents=True, exist_ok=True)
        self.opt = C.optimizer(self.policy, config)
        self.counters = C.Counters(judge_reused=0 if config.judge_cache else None)
        self.extra: dict[str, dict[str, torch.Tensor]] = {}
        self.start = 0
        if state is not None:
            C.restore(self.policy, self.opt, state)
            self.extra = state["extra"]
            for k, v in state["counters"].items():
                setattr(self.counters, k, v)
            self.start = state["step"]
            if "judge" in state:          # the max–min adversary continues where it stopped
                self.judge.load_state_json(state["judge"])
        self.sampler.sync(self.policy)   # LoRA, a resumed run: not the weights the engine loaded
        if accelerator is not None:
            self.model, self.opt = accelerator.prepare(self.policy.model, self.opt)
        else:
            self.model = self.policy.model
        self.metrics = C.Metrics(self.work / "metrics.jsonl", self.start) if self.rank == 0 else None
        # --judge-cache: rank 0 keeps it in OUT/judgments.sqlite (a resumed run reloads it), the
        # other processes in memory, loaded from the file on resume; `judge_pairs` shares answers
        self.judgments = None
        if config.judge_cache:
            from trainers.lm.judgments import FILE, JudgmentCache

            fingerprint = getattr(self.judge, "fingerprint", None)
            if self.rank == 0:
                self.judgments = JudgmentCache(self.work / FILE, judge_fingerprint=fingerprint, exchange=self.world > 1)
            else:
                self.judgments = JudgmentCache.replica(self.work / FILE, judge_fingerprint=fingerprint) if resume \
                    else JudgmentCache(exchange=True)
        self.tracker = C.tracker(config, self.work, algorithm) if self.rank == 0 else None
        self.device = config.device

    # ---- pieces the loops call -------------------------------------------------------
    def micro_batches(self):
        """The micro-batches of one optimiser step: sets this process's rows of the step's
        batch (batch-size × grad-accum prompts, drawn as one) and yields the micro-batch index.

        The rows of micro-batch j are the j-th block of `batch_size` prompts of that batch, so
        grad-accum N at batch size B samples, judges and averages exactly what batch size N·B
        does in one pass (`tests/trainers/lm/test_grad_accum.py`).
        """
        self._backwards = []
        B = self.config.batch_size
        for j in range(self.config.grad_accum):
            self.micro = j
            local = C.shard(B, self.rank, self.world)
            self.rows = slice(j * B + local.start, j * B + local.stop)
            yield j
        self.micro = 0

    def step_batch_size(self) -> int:
        """Prompts per optimiser step over all processes: batch_size × grad_accum."""
        return self.config.batch_size * self.config.grad_accum

    def batch(self, step: int) -> list[str]:
        """This process's prompts of the current micro-batch of `step`."""
        return C.prompt_batch(self.prompts, self.step_batch_size(), seed=self.config.seed, step=step)[self.rows]

    def uniforms(self, step: int, purpose: int, copies: int = 1, n: int | None = None) -> torch.Tensor:
        """Uniforms for `copies` responses per prompt: (copies·B_local, T), drawn for the step's
        whole batch and cut to this process's rows of the current micro-batch (n given: all n
        rows, for rank-0-only evaluation)."""
        T = self.config.max_new_tokens
        u = torch.rand((copies, n or self.step_batch_size(), T), generator=C.generator(self.config.seed, step, purpose))
        return (u if n else u[:, self.rows]).reshape(-1, T)

    def encode(self, prompts):
        return C.encode(self.policy.tokenizer, prompts, self.device, self.policy.prompt_format)

    def sample(self, model, ids, mask, u, **kw):
        """Responses of `model`: the current policy's through the run's sampler (`C.Sampler`);
        another view (reference, target) or Nash-MD's mixture (`ref=`, `m=`) through hf."""
        if model is self.policy.model and not kw:
            return self.sampler.sample(self.policy, ids, mask, u)
        return C.sample(model, self.policy, ids, mask, u, **kw)

    def logprobs(self, model, ids, mask, gen):
        """Sequence log-probs (B,)."""
        with C.checkpointing(self.policy.model, self.config.gradient_checkpointing):
            return C.sequence_logprobs(model, ids, mask, gen, self.policy.banned)

    def token_logprobs(self, model, ids, mask, gen):
        """Next-token log-probs along the samples (B, T, V) (`--gradient-checkpointing`: recomputed
        in the backward pass when computed with gradients)."""
        with C.checkpointing(self.policy.model, self.config.gradient_checkpointing):
            return C.token_logprobs(model, ids, mask, gen, self.policy.banned)

    def kl_term(self, logprobs, logprobs0, gen):
        return C.kl_term(logprobs, logprobs0, gen, self.config.kl_estimator)

    def texts(self, gen):
        return C.decode(self.policy.tokenizer, gen, self.policy.stop)

    def judged_self_pair(self, step: int):
        """A micro-batch's prompts, each answered twice by the policy in one batch of 2B rows
        (first B, then B) and judged first against second: (prompts, ids2, mask2, gen, pref, ok,
        weight) as `judge_pairs` and `loss_rows` give them, or None when every judgment failed."""
        prompts = self.batch(step)
        ids, mask = self.encode(prompts)
        ids2, mask2 = torch.cat([ids, ids]), torch.cat([mask, mask])
        gen = self.sample(self.policy.model, ids2, mask2, self.uniforms(step, 1, copies=2))
        texts = self.texts(gen)
        n = len(prompts)
        pref, ok = self.judge_pairs(prompts, texts[:n], texts[n:], step)
        if self.judged == 0:                     # every judgment of the micro-batch failed: no backward
            return None
        ok, weight = self.loss_rows(ok)
        return prompts, ids2, mask2, gen, pref, ok, weight

    def judge_pairs(self, prompts, a, b, step: int, *, purpose: int = 3):
        pref, ok, asked = C.judge_pairs(self.judge, prompts, a, b, labels=self.config.labels,
                                        gen=C.generator(self.config.seed, step, purpose + 100 * self.micro),
                                        cache=self.judgments)
        if self.judgments is not None and self.world > 1:
            self._share_judgments()
        # every process judges its own equal share of the global batch
        counts = torch.tensor([int((~ok).sum()), asked])
        if self.accelerator is not None:   # count every process's failures and queries, not only rank 0's
            counts = self.accelerator.reduce(counts.to(self.accelerator.device), "sum").cpu()
        failures, asked = int(counts[0]), int(counts[1])
        self.counters.judge_queries += asked
        if self.judgments is not None:
            self.counters.judge_reused += len(prompts) * self.world - asked
        self.counters.judge_failures += failures
        self.judged = len(prompts) * self.world - failures
        return pref.to(self.device), ok.to(self.device)

    def _share_judgments(self) -> None:
        """--judge-cache with several processes: every process's new answers go into every
        process's cache (rank 0's file holds them all), so none asks what another has bought."""
        from accelerate.utils import gather_object

        everyone = gather_object([self.judgments.take_asked()])      # one list of answers per process
        self.judgments.store([row for r, rows in enumerate(everyone) if r != self.rank for row in rows], others=True)

    def loss_rows(self, ok: torch.Tensor) -> tuple[torch.Tensor, float]:
        """Rows that enter the loss, and the weight of this process's loss.

        Call only when some row of the global batch was judged (`self.judged > 0`, the same on
        every process, so all of them step or none). A process whose own rows all failed still
        joins the backward (data parallel needs every process) on all its rows, with weight 0.
        """
        if bool(ok.any()):
            return ok, 1.0
        return torch.ones_like(ok), 0.0

    def backward(self, loss: torch.Tensor, parts: LossParts | None = None, **values) -> None:
        """Backward of one micro-batch's loss, scaled by 1/grad-accum (the step's gradient is
        the mean over its micro-batches); `parts` and `values` are logged averaged over them.
        With several processes the gradients are averaged over processes as well."""
        loss = loss / self.config.grad_accum
        if self.accelerator is not None:
            self.accelerator.backward(loss)
        else:
            loss.backward()
        self._backwards.append((parts, values))

    def step(self, step: int) -> float | None:
        """Clip and take the optimiser step over the accumulated micro-batches; None (no
        update) when every micro-batch was skipped. A skipped micro-batch (all its judgments
        failed) leaves the mean over the others."""
        done = len(self._backwards)
        if done == 0:
            return None
        if done < self.config.grad_accum:
            with torch.no_grad():
                for p in self.policy.trainable().values():
                    if p.grad is not None:
                        p.grad.mul_(self.config.grad_accum / done)
        grad_norm = C.clip_and_step(self.policy, self.opt, self.config, step)
        self.sampler.sync(self.policy)
        return grad_norm

    # ---- after each step ---------------------------------------------------------------
    def end_step(self, step: int, *, anchor: dict[str, torch.Tensor] | None = None,
                 refresh_anchor: bool = False, **values) -> None:
        """Log step `step` (0-based; logged as step+1 = completed steps), evaluate, save.

        The loss parts and values given to `backward` are averaged over the step's
        micro-batches; a step without any backward is logged with skipped=1."""
        cfg = self.config
        done = step + 1
        row = {"step": done, **self.counters.to_json(), "lr": C.learning_rate(cfg, step)}
        recorded = [(p, v) for p, v in self._backwards]
        got = [p for p, _ in recorded if p is not None]
        if got:
            row.update(loss=_mean(float(p.loss.detach()) for p in got), pg=_mean(p.pg for p in got),
                       kl_ref=_mean(p.kl_ref for p in got), kl_target=_mean(p.kl_target for p in got))
        if not recorded:
            values = {"skipped": 1, **values}
        for key in dict.fromkeys(k for _, v in recorded for k in v):
            row[key] = _mean(float(v[key]) for _, v in recorded if key in v)
        values = {k: v for k, v in values.items() if v is not None}   # e.g. no grad_norm on a skipped step
        row.update({k: (float(v) if isinstance(v, (int, float, torch.Tensor)) else v) for k, v in values.items()})
        self._backwards = []
        evaluate = cfg.eval_every and (done % cfg.eval_every == 0 or done == cfg.steps)
        if self.known is not None and (self.known.every_step or evaluate or done == cfg.steps):
            pi, unresolved = C.policy_classes(self.policy.model, self.policy, self.known, self.device)
            row.update(C.nash_metrics(pi, self.known))
            if not self.known.every_step:
                row["nash_pruned"] = unresolved
        if evaluate and self.rank == 0:
            if anchor is None:
                anchor = self.extra.setdefault("anchor", self.policy.ref_params or {})
            row["win_rate_vs_target"] = self.win_rate(step, anchor)
            row["eval_judge_queries"] = self.counters.eval_judge_queries
            if refresh_anchor:
                self.extra["anchor"] = self.policy.copy_trainable()
        row["seconds"] = round(time.time() - self.counters.started, 3)
        if self.metrics is not None:
            self.metrics.log(row)
        if self.tracker is not None:   # scalars only (class_probs is a list)
            self.tracker.log({k: v for k, v in row.items() if isinstance(v, (int, float)) and k != "step"}, step=done)
        self.last_row = row
        if cfg.save_every and done % cfg.save_every == 0 and done < cfg.steps and self.rank == 0:
            C.save_state(self.work, done, self.policy, self.opt, self.extra, self.counters.to_json(), cfg,
                         judge_state=self.judge.state_json() if hasattr(self.judge, "state_json") else None)
            summary = {k: row[k] for k in ("judge_queries", "judge_reused", "kl_to_nash", "tv_to_nash") if k in row}
            C.save_checkpoint(self.policy, self.work, done, self.algorithm, cfg, summary)
        if self.progress is not None:
            self.progress(done, row)

    @torch.no_grad()
    def win_rate(self, step: int, anchor: dict[str, torch.Tensor]) -> float | None:
        """Mean judged P(policy ≻ anchor) on a fresh prompt batch (extra judge queries)."""
        cfg = self.config
        prompts = C.prompt_batch(self.prompts, cfg.eval_batch, seed=cfg.seed + 7919, step=step)
        ids, mask = self.encode(prompts)
        y = self.sample(self.policy.model, ids, mask, self.uniforms(step, 8, n=cfg.eval_batch))
        other = self.policy.view(anchor) if anchor else self.policy.reference()
        y2 = self.sample(other, ids, mask, self.uniforms(step, 9, n=cfg.eval_batch))
        pref, ok, _ = C.judge_pairs(self.judge, prompts, self.texts(y), self.texts(y2), labels="soft",
                                    gen=C.generator(cfg.seed, step, 10))
        self.counters.eval_judge_queries += len(prompts)   # rank 0 only
        if not bool(ok.any()):
            return None
        return float(pref[ok].mean())

    def finish(self, summary: dict | None = None) -> Path:
        if self.accelerator is not None:
            self.accelerator.wait_for_everyone()
            if self.rank != 0:
                return self.out
        if self.tracker is not None:
            self.tracker.finish()
        if self.judgments is not None:
            self.judgments.close()
        last = getattr(self, "last_row", {})
        summary = {k: last[k] for k in ("step", "judge_queries", "judge_reused", "kl_to_nash", "tv_to_nash")
                   if k in last} | (summary or {})
        if "step" in summary:
            summary["steps_done"] = summary.pop("step")
        return C.finish(self.policy, self.work, self.out, self.algorithm, self.config, summary)


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)
