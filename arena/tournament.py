"""Round-robin tournaments between checkpoints: plan, generate what is missing, judge what is
missing, analyse. Resumable after a kill, incremental when a checkpoint is added.

Cost. N checkpoints, P prompts, S samples per prompt: N·P·S generations (each checkpoint
answers each (prompt, sample) once; every match reuses it) and, for M compared pairs,
M·P·S comparisons, each judged in both positions, i.e. 2·M·P·S judge calls. By default M =
N(N−1)/2, every unordered pair.

What "both orders" means, exactly:

- pairs: a pair {a, b} is compared once per (prompt, sample); "a vs b" and "b vs a" are the
  same comparison and are never scheduled twice. `pairs=` restricts to the listed pairs.
- judge positions: every comparison is shown to the judge twice, a first and b first
  (`judges.judge_both_orders`): p_ab = P(a ≻ b | a first), p_ba = P(a ≻ b | b first) =
  1 − judge(b, a), and the debiased p = (p_ab + p_ba)/2 is the comparison's score. A failure
  in either position makes the comparison a failure: stored with its error, counted in
  `run.failures`, left out of the analysis, never a tie.

Sample s of a is compared with sample s of b, on the same prompt. Responses are sampled
with a seed that depends only on (seed, checkpoint fingerprint, prompt hash, s).

Store. Everything goes through `arena.store` in the run directory, keyed by content
(checkpoint fingerprint, prompt hash, sampling-params key, judge fingerprint): a rerun
reuses all of it, a killed run resumes, a new checkpoint costs only its own P·S generations
and its N·P·S new comparisons (against the N already there), and a changed judge or changed
sampling parameters reuse nothing stale (they are part of the keys). Checkpoint fingerprints
are cached in the store under each path's stat signature, so an unchanged checkpoint is not
hashed again.

Rerun. A rerun that finds nothing to generate loads no model and no tokenizer (a
checkpoint's tokenizer is checked only when it has something to generate). The finished
analysis is stored under `analysis_key`, the hash of everything it is computed from (the
checkpoints' fingerprints and cards, the prompts, the judge, the sampling key, every stored
verdict, the analysis settings and the package version); a rerun with the same key returns
it without bootstrapping again and leaves results.json and the reports as they are (written
again, identically, only when one is missing or differs). results.json therefore records the
run that computed the analysis; the returned dict's `run.new`/`run.reused` count this call's
work. A `.gguf` checkpoint is converted to safetensors once (`arena.convert`) into
RUN_DIR/converted-gguf/<fingerprint> and generated from there, instead of being dequantised
on every run.

Analysis. Bradley–Terry with intervals from a bootstrap clustered by prompt (resampling
prompts, not single judgments, since judgments on one prompt are correlated), the
preference matrix, cycles and the maximum-entropy Nash mixture, all by `arena.analysis`
(Balduzzi et al. 2018, arXiv 1806.02643, for the Nash summary).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

from arena.errors import ConfigError, InputError
from arena.result import JudgeInfo, Result, RunInfo

DEFAULT_RUN_DIR = "arena-run"


@dataclass(frozen=True, kw_only=True)
class TournamentConfig:
    ckpts_dir: Path
    """Directory holding the checkpoints (one sub-directory per model, PEFT adapters, .gguf files)."""
    prompts: Path | None = None
    """Prompt file (JSONL/CSV/text) or saved `datasets` directory; None = CKPTS_DIR/../prompts.jsonl
    when it exists, else the built-in set."""
    judge: str | None = None
    """Judge spec (`judges.load_judge`); None = the text of CKPTS_DIR/../judge.txt when it exists."""
    out: Path | None = None
    """Run directory (store + reports); None = CKPTS_DIR/../arena-run."""
    samples: int = 1
    """Responses per (checkpoint, prompt)."""
    max_new_tokens: int = 64
    """Generation length limit."""
    temperature: float = 1.0
    """Sampling temperature (0 = greedy)."""
    top_p: float = 1.0
    """Nucleus sampling mass."""
    seed: int = 0
    """Seed for sampling and for the bootstrap."""
    engine: str = "hf"
    """Generation engine: hf, vllm or openai."""
    base_url: str | tuple[str, ...] | None = None
    """Server URL for the openai engine (else OPENAI_BASE_URL); a tuple: several servers, load-balanced."""
    engine_options: tuple[tuple[str, str], ...] = ()
    """(name, value) options of the vllm engine passed to `vllm.LLM` (dtype, tensor_parallel_size, ...)."""
    batch_size: int = 16
    """Generation batch size (results do not depend on it)."""
    judge_batch_size: int = 32
    """Comparisons per judge call and per store transaction."""
    pairs: tuple[tuple[str, str], ...] | None = None
    """Restrict to these checkpoint pairs (names); None = all pairs."""
    dry_run: bool = False
    """Only plan: report the cost and what is already done; write nothing."""
    allow_pickle: bool = False
    """Allow pickle-based weights (*.bin); they can run code when loaded."""
    trust_remote_code: bool = False
    """Let transformers run code shipped with a checkpoint."""
    rounds: int = 1000
    """Bootstrap rounds for the rating intervals."""
    level: float = 0.95
    """Confidence level of the intervals."""
    prior: float = 0.0
    """Bradley–Terry prior (needed when --pairs leaves the comparison graph disconnected)."""
    retry_failures: bool = False
    """Judge again the comparisons stored as failures (e.g. after a server outage)."""
    write_reports: bool = True
    """Write results.json, matrix.csv, plots and report.html into the run directory."""
    stop: tuple[str, ...] = ()
    """Stop strings: each response is cut before the first one (every engine alike)."""
    chat_template: str = "auto"
    """auto: a checkpoint's chat template when its tokenizer has one; on: require it; off: raw text."""
    prompt_template: str | None = None
    """Text around each prompt, with {prompt} (e.g. "Question: {prompt}\nAnswer:" for base models)."""
    system_prompt: str | None = None
    """System prompt (a system message under a chat template, else a first paragraph)."""
    dtype: str = "auto"
    """Weights dtype for the hf engine: auto (the checkpoint's), bf16, fp16, fp32."""
    style_control: bool = False
    """Also report ratings, preference matrix and Nash at equal style (arena.style_tournament)."""


@dataclass(frozen=True)
class Plan:
    """What a run needs and what the store already has."""

    names: tuple[str, ...]
    pairs: tuple[tuple[int, int], ...]
    gen_keys: tuple[tuple[int, int, int], ...]          # (checkpoint, prompt, sample)
    gen_todo: tuple[tuple[int, int, int], ...]
    cmp_keys: tuple[tuple[int, int, int, int], ...]     # (a, b, prompt, sample)
    cmp_todo: tuple[tuple[int, int, int, int], ...]

    def summary(self) -> dict:
        return {
            "checkpoints": len(self.names),
            "pairs": len(self.pairs),
            "generations": {"total": len(self.gen_keys), "done": len(self.gen_keys) - len(self.gen_todo),
                            "todo": len(self.gen_todo)},
            "comparisons": {"total": len(self.cmp_keys), "done": len(self.cmp_keys) - len(self.cmp_todo),
                            "todo": len(self.cmp_todo)},
            "judgments": {"total": 2 * len(self.cmp_keys), "done": 2 * (len(self.cmp_keys) - len(self.cmp_todo)),
                          "todo": 2 * len(self.cmp_todo)},
        }


def default_run_dir(ckpts_dir: Path) -> Path:
    """CKPTS_DIR/../arena-run: beside the checkpoints, never inside (it would be scanned)."""
    return Path(ckpts_dir).resolve().parent / DEFAULT_RUN_DIR


def resolve_judge_spec(config: TournamentConfig) -> str:
    if config.judge:
        return config.judge.strip()
    candidate = Path(config.ckpts_dir).resolve().parent / "judge.txt"
    if candidate.is_file() and candidate.read_text().strip():
        return candidate.read_text().strip()
    raise ConfigError("no judge given: pass --judge SPEC (e.g. python:module:function, hf:PATH, "
                      "openai:URL#MODEL), or put the spec in CKPTS_DIR/../judge.txt")


def resolve_prompts_path(config: TournamentConfig) -> Path | None:
    """--prompts, else CKPTS_DIR/../prompts.jsonl when it exists (a world's layout), else None (built-in set)."""
    if config.prompts is not None:
        return Path(config.prompts)
    candidate = Path(config.ckpts_dir).resolve().parent / "prompts.jsonl"
    return candidate if candidate.is_file() else None


def select_pairs(names: list[str], pairs) -> list[tuple[int, int]]:
    """Index pairs (i < j) to compare: all unordered pairs, or the named ones."""
    if pairs is None:
        return [(i, j) for i in range(len(names)) for j in range(i + 1, len(names))]
    index = {n: i for i, n in enumerate(names)}
    chosen = set()
    for a, b in pairs:
        for n in (a, b):
            if n not in index:
                raise InputError(f"--pairs names {n!r}, which is not a checkpoint here; choose from {', '.join(names)}")
        if a == b:
            raise InputError(f"--pairs has {a}:{a}; a checkpoint is not compared with itself")
        i, j = sorted((index[a], index[b]))
        chosen.add((i, j))
    if not chosen:
        raise InputError("--pairs is empty; give pairs as a:b,c:d")
    return sorted(chosen)


def parse_pairs(text: str | None) -> tuple[tuple[str, str], ...] | None:
    """'a:b,c:d' -> (('a', 'b'), ('c', 'd')); None stays None."""
    if text is None:
        return None
    out = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        a, sep, b = item.partition(":")
        if not sep or not a.strip() or not b.strip():
            raise InputError(f"bad --pairs entry {item!r}; write pairs as name_a:name_b,name_c:name_d")
        out.append((a.strip(), b.strip()))
    if not out:
        raise InputError("--pairs is empty; give pairs as a:b,c:d")
    return tuple(out)


def _note(console, text: str) -> None:
    if console is not None:
        console.print(text, soft_wrap=True)


def _progress(console):
    from arena.progress import open_progress

    return open_progress(console)


def run_tournament(config: TournamentConfig, *, console=None) -> Result | dict:
    """Run (or resume, or extend) a tournament; return its `arena.result.Result`.

    The result is `arena.analysis.analyze_records`'s plus `run` (`RunInfo`; counts: `generations`,
    `judgments` = judge calls, `comparisons`, `reused`/`new` {generations, judgments},
    `failures`), `judge` (`JudgeInfo`) {`spec`, `fingerprint`, `position_consistency`,
    `first_position_rate`, `failures`} and `checkpoints` {name: {fingerprint, kind, card
    fields}}. With `dry_run` it is {`dry_run`: True, `plan`: ..., `skipped`, `out`} instead
    and nothing is written. `console` (rich, stderr) receives notes and progress bars.
    Every input is checked before any generation: checkpoints, tokenizers, prompts, judge,
    engine, run directory.
    """
    import judges
    from arena.checkpoints import dedupe_checkpoints, discover_checkpoints, validate_checkpoint
    from arena.engines import ENGINES, SamplingParams, get_engine
    from arena.fingerprint import FingerprintCache
    from arena.prompts import load_prompts
    from arena.store import Store, run_lock

    started = time.perf_counter()
    # ---- 1. check every input before any long work --------------------------------------
    if config.samples < 1:
        raise ConfigError(f"samples must be >= 1; got {config.samples}")
    if config.engine not in ENGINES:
        raise ConfigError(f"unknown engine {config.engine!r}; choose one of {', '.join(ENGINES)}")
    from arena.lm import PromptFormat

    fmt = PromptFormat(chat=config.chat_template, template=config.prompt_template, system=config.system_prompt)
    if config.engine == "openai" and fmt.key():
        raise ConfigError("--chat-template/--prompt-template/--system-prompt apply to --engine hf and vllm; with "
                          "--engine openai the server formats prompts: drop them or use the server's chat endpoint")
    params = SamplingParams(max_new_tokens=config.max_new_tokens, temperature=config.temperature,
                            top_p=config.top_p, seed=config.seed, stop=config.stop, prompt_format=fmt,
                            dtype=config.dtype)
    out = Path(config.out) if config.out is not None else default_run_dir(config.ckpts_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"run directory {out} is a file; pass --out with a directory path")
    pkey = params.key(config.engine)
    if config.engine_options:  # vLLM's dtype, max_model_len, ... change the responses: part of their key
        from arena.fingerprint import fingerprint_obj

        pkey = fingerprint_obj({"params": pkey, "engine_options": sorted(config.engine_options)})
    # What the run directory already holds: fingerprints (so unchanged checkpoints are not
    # hashed again) and generations (so checkpoints with nothing left to generate are not loaded).
    ro = Store.open_readonly(out) if out.is_dir() else None
    fp_cache = FingerprintCache(known=ro.fingerprints() if ro else {})
    gens_done = ro.generations(pkey) if ro else {}
    if ro:
        ro.close()
    discovery = discover_checkpoints(config.ckpts_dir, allow_pickle=config.allow_pickle, fingerprints=fp_cache)
    for s in discovery.skipped:
        _note(console, f"[yellow]not a checkpoint:[/] {s.name} ({s.reason})")
    # Copies of one checkpoint (same fingerprint) are one entity, never matched against itself.
    unique = dedupe_checkpoints(discovery.checkpoints)
    ckpts = list(unique.checkpoints)
    alias = {dup: kept for kept, dups in unique.duplicates.items() for dup in dups}
    for kept, dups in unique.duplicates.items():
        _note(console, f"[yellow]identical checkpoints:[/] {', '.join(dups)} = {kept} (same fingerprint); "
                       f"rated once, as {kept}")
    if len(ckpts) < 2:
        raise InputError(f"a tournament needs at least two different checkpoints; {config.ckpts_dir} has "
                         f"{len(ckpts)} ({', '.join(c.name for c in discovery.checkpoints)}"
                         f"{', identical copies' if unique.duplicates else ''}): add another model directory")
    names = [c.name for c in ckpts]
    wanted = config.pairs
    if wanted is not None:
        for a, b in wanted:
            if a != b and alias.get(a, a) == alias.get(b, b):
                raise InputError(f"--pairs has {a}:{b}, but they are the same checkpoint (same fingerprint); "
                                 "drop the pair or replace one of them")
        wanted = tuple((alias.get(a, a), alias.get(b, b)) for a, b in wanted)
    pairs = select_pairs(names, wanted)
    prompts = load_prompts(resolve_prompts_path(config))
    # ---- every checkpoint that has something to generate is validated before any judge or
    # engine is loaded; one whose generations are all stored is not loaded at all (a rerun
    # that reuses everything loads no tokenizer). A server holds the weights for --engine openai.
    if config.engine != "openai":
        for i in sorted({i for pair in pairs for i in pair}):
            c = ckpts[i]
            if any((c.fingerprint, p.hash, s) not in gens_done for p in prompts for s in range(config.samples)):
                validate_checkpoint(c, trust_remote_code=config.trust_remote_code)
    spec = resolve_judge_spec(config)
    judge = judges.load_judge(spec)
    if config.engine_options and config.engine != "vllm":
        raise ConfigError(f"--engine-option is for --engine vllm; --engine {config.engine} takes none: drop it")
    extra = {"llm_options": dict(config.engine_options)} if config.engine_options else {}
    engine = get_engine(config.engine, batch_size=config.batch_size, base_url=config.base_url,
                        trust_remote_code=config.trust_remote_code, allow_pickle=config.allow_pickle, **extra)
    if config.judge_batch_size < 1:
        raise ConfigError(f"judge_batch_size must be >= 1; got {config.judge_batch_size}")
    if out.resolve() == Path(config.ckpts_dir).resolve() or Path(config.ckpts_dir).resolve() in out.resolve().parents:
        raise InputError(f"run directory {out} is inside the checkpoint folder; put --out elsewhere")

    args = (config, console, ckpts, discovery, unique.duplicates, prompts, pairs, spec, judge, engine, out, params,
            pkey, started, fp_cache)
    if config.dry_run:
        return _plan_and_run(*args)
    # One writer per run directory; the lock is taken before planning, so a second run
    # waits for nothing and redoes nothing: it stops with the holder's pid.
    with run_lock(out):
        return _plan_and_run(*args)


def _plan_and_run(config, console, ckpts, discovery, duplicates, prompts, pairs, spec, judge, engine, out, params,
                  pkey, started, fp_cache) -> Result | dict:
    import judges
    from arena.engines import Request, request_seed
    from arena.store import Judgment, Store, lookup

    names = [c.name for c in ckpts]
    # ---- 2. plan against what the store already holds -----------------------------------
    ro = Store.open_readonly(out)
    gens_done = ro.generations(pkey) if ro else {}
    judged = ro.judgments(judge.fingerprint, pkey) if ro else {}
    if ro:
        ro.close()
    fps = [c.fingerprint for c in ckpts]
    phash = [p.hash for p in prompts]
    S = range(config.samples)
    playing = sorted({i for pair in pairs for i in pair})  # with --pairs, only the checkpoints in a pair
    gen_keys = [(c, p, s) for c in playing for p in range(len(prompts)) for s in S]
    gen_todo = [k for k in gen_keys if (fps[k[0]], phash[k[1]], k[2]) not in gens_done]
    cmp_keys = [(a, b, p, s) for a, b in pairs for p in range(len(prompts)) for s in S]

    def pending(k):
        j = lookup(judged, phash[k[2]], k[3], fps[k[0]], fps[k[1]])
        return j is None or (config.retry_failures and j.p is None)

    cmp_todo = [k for k in cmp_keys if pending(k)]
    # The engine is checked only when there is something to generate (the checkpoints that
    # generate were validated in run_tournament), so a rerun that reuses everything loads nothing.
    if gen_todo and hasattr(engine, "check"):
        engine.check()
    plan = Plan(tuple(names), tuple(pairs), tuple(gen_keys), tuple(gen_todo), tuple(cmp_keys), tuple(cmp_todo))
    summary = plan.summary()
    _note(console, f"plan: {len(names)} checkpoints, {len(prompts)} prompts × {config.samples} samples, "
                   f"{len(pairs)} pairs; generations {summary['generations']['done']} reused + "
                   f"{summary['generations']['todo']} new; judge calls {summary['judgments']['done']} reused + "
                   f"{summary['judgments']['todo']} new (run dir {out})")
    if config.dry_run:
        return {"dry_run": True, "plan": summary, "out": str(out), "judge": {"spec": spec, "fingerprint": judge.fingerprint},
                "checkpoints": {c.name: {"fingerprint": c.fingerprint, "kind": c.kind,
                                         "generations_todo": sum(1 for k in gen_todo if k[0] == i)}
                                for i, c in enumerate(ckpts)},
                "skipped": {s.name: s.reason for s in discovery.skipped},
                "duplicates": {k: list(v) for k, v in duplicates.items()}}

    # ---- 3. generate what is missing (one short transaction per batch) -------------------
    store = Store.open(out)
    try:
        store.put_fingerprints(fp_cache.fresh)
        store.put_checkpoints(ckpts)
        store.put_prompts(prompts)
        t_gen = time.perf_counter()
        with _progress(console) as bar:
            task = bar.add_task("generating", total=len(gen_todo))
            for ci, c in enumerate(ckpts):
                todo = [k for k in gen_todo if k[0] == ci]
                if not todo:
                    continue
                bar.update(task, description=f"generating {c.name}")
                if c.kind == "gguf" and config.engine == "hf":  # dequantised once per file, not on every run
                    c = _converted_gguf(c, out, console)
                reqs = [Request(prompts[p].text, request_seed(config.seed, fps[ci], phash[p], s)) for _, p, s in todo]
                for batch in engine.generate(c, reqs, params):
                    store.put_generations((fps[ci], phash[todo[i][1]], todo[i][2], pkey, reqs[i].seed, text)
                                          for i, text in batch)
                    bar.advance(task, len(batch))
            bar.update(task, description="generating")
        t_gen = time.perf_counter() - t_gen
        texts = store.generations(pkey)
        missing = [k for k in gen_keys if (fps[k[0]], phash[k[1]], k[2]) not in texts]
        if missing:  # an engine that skipped a request is a bug; never judge around a hole
            raise RuntimeError(f"engine {config.engine} left {len(missing)} requests unanswered")

        # ---- 4. judge what is missing, both positions, one transaction per batch ---------
        t_judge = time.perf_counter()
        label_mass = []  # (judgments, mean label mass) per judge call that reports it
        calls: list[dict] = []  # the judge's per-call diagnostics (openai: logprob/text/fallback/failure counts)
        with _progress(console) as bar:
            task = bar.add_task("judging", total=2 * len(cmp_todo))
            for start in range(0, len(cmp_todo), config.judge_batch_size):
                chunk = cmp_todo[start:start + config.judge_batch_size]
                comps = [judges.Comparison(prompts[p].text, texts[(fps[a], phash[p], s)], texts[(fps[b], phash[p], s)])
                         for a, b, p, s in chunk]
                verdicts = judges.judge_both_orders(judge, comps)
                if hasattr(judge, "diagnostics"):  # label mass of this call's 2·len(chunk) judgments
                    mass = judge.diagnostics().get("label_mass_mean")
                    if mass is not None:
                        label_mass.append((2 * len(chunk), mass))
                store.put_judgments(judge.fingerprint, pkey,
                                    [(phash[p], s, fps[a], fps[b], Judgment(v.p, v.p_ab, v.p_ba, v.error))
                                     for (a, b, p, s), v in zip(chunk, verdicts)],
                                    replace=config.retry_failures)
                notes = _fallback_notes(judge, len(chunk))
                if notes is not None:
                    store.put_notes(judge.fingerprint, pkey, [(phash[p], s, fps[a], fps[b], note)
                                                              for (a, b, p, s), note in zip(chunk, notes)])
                if hasattr(judge, "diagnostics"):
                    calls.append(judge.diagnostics())
                bar.advance(task, 2 * len(chunk))
        t_judge = time.perf_counter() - t_judge
        judged = store.judgments(judge.fingerprint, pkey)
        notes = store.notes(judge.fingerprint, pkey)
    finally:
        store.close()

    # ---- 5. analyse, unless this exact analysis is stored ----------------------------------
    key = analysis_key(ckpts, prompts, plan, judged, phash, fps, config=config, spec=spec,
                       judge_fingerprint=judge.fingerprint, pkey=pkey)
    with Store.open(out) as store:
        stored = store.analysis(key)
    if stored is None:
        with _progress(console) as bar:
            task = bar.add_task("bootstrap", total=config.rounds)
            result = analyse(ckpts, prompts, plan, judged, phash, fps, config=config, texts=texts,
                             progress=lambda done, total: bar.update(task, completed=done, total=total))
            bar.update(task, completed=config.rounds)
        run = replace(result.run, new={"generations": len(gen_todo), "judgments": 2 * len(cmp_todo)},
                      reused={"generations": len(gen_keys) - len(gen_todo),
                              "judgments": 2 * (len(cmp_keys) - len(cmp_todo))})
        checkpoints = result.checkpoints
        if duplicates:  # copies share their entity's rating and Nash mass (never matched against it)
            checkpoints = {name: {**card, "duplicates": list(duplicates[name])} if name in duplicates else card
                           for name, card in checkpoints.items()}
        # Text verdicts the judge substituted for unusable logprobs (opt-in), over the whole plan,
        # and the judge's own counts for the calls made by this invocation.
        text_fallbacks = sum(1 for a, b, p, s in plan.cmp_keys if (phash[p], s, *sorted((fps[a], fps[b]))) in notes)
        counts = {k: sum(d.get(k, 0) for d in calls) for k in ("from_logprobs", "from_text", "text_fallbacks", "failures")
                  if any(k in d for d in calls)}
        result = replace(result, run=run, checkpoints=checkpoints,
                         judge=replace(result.judge, spec=spec, fingerprint=judge.fingerprint,
                                       text_fallbacks=text_fallbacks, calls=counts or None),
                         duplicates={k: list(v) for k, v in duplicates.items()} if duplicates else None)
        result = _judge_health(result, label_mass)
        try:
            text = json.dumps(result.to_json(), allow_nan=False)
        except ValueError:  # not strict JSON: not stored (write_outputs says why when it writes)
            text = None
        if text is not None:
            with Store.open(out) as store:
                store.put_analysis(key, text)
    else:
        result = Result.from_json(json.loads(stored))
        _note(console, f"nothing changed since the analysis in {out}: reusing it (key {key})")
    reports_current = stored is not None and _reports_match(out, result.to_json())
    if stored is not None:  # this call's work, not that of the run that computed the analysis
        result = replace(result, run=replace(result.run, new={"generations": 0, "judgments": 0},
                                             reused={"generations": len(gen_keys), "judgments": 2 * len(cmp_keys)}))
    run = result.run
    _note(console, f"reused {run.reused['generations']} generations and {run.reused['judgments']} judge calls; "
                   f"new: {run.new['generations']} generations ({t_gen:.1f} s), {run.new['judgments']} judge calls "
                   f"({t_judge:.1f} s); failures {run.failures}; text fallbacks {result.judge.text_fallbacks or 0}; "
                   f"total {time.perf_counter() - started:.1f} s")
    if config.write_reports and not reports_current:
        from arena.report import write_outputs

        write_outputs(json.loads(stored) if stored is not None else result, out)
        _note(console, f"wrote {out}/results.json, matrix.csv, plots and report.html")
    return result


def _fallback_notes(judge, n: int) -> list[str | None] | None:
    """Per comparison of the last `judge_both_orders` call (n comparisons, 2n judge calls: the
    originals, then the swapped): "text_fallback" when either order used the text fallback,
    else None; None when the judge does not report its sources."""
    sources = getattr(judge, "sources", None)
    if not isinstance(sources, list) or len(sources) != 2 * n:
        return None
    return ["text_fallback" if "text_fallback" in (sources[i], sources[n + i]) else None for i in range(n)]


def _converted_gguf(c, out: Path, console):
    """The GGUF checkpoint `c` as the safetensors copy cached in the run directory (same fingerprint)."""
    from dataclasses import replace

    from arena.convert import CONVERTED_DIR, cached_conversion

    target = out / CONVERTED_DIR / c.fingerprint
    if not target.is_dir():
        _note(console, f"converting {c.path.name} to safetensors once, into {target}")
    return replace(c, kind="hf", path=cached_conversion(c.path, c.fingerprint, out / CONVERTED_DIR))


def analysis_key(ckpts, prompts, plan: Plan, judged: dict, phash, fps, *, config: TournamentConfig, spec: str,
                 judge_fingerprint: str, pkey: str) -> str:
    """Hash of everything `analyse` and the result depend on (see the module docstring)."""
    import arena
    from arena.fingerprint import fingerprint_obj
    from arena.store import lookup

    verdicts = []
    for a, b, p, s in plan.cmp_keys:
        j = lookup(judged, phash[p], s, fps[a], fps[b])
        verdicts.append(None if j is None else [j.p, j.p_ab, j.p_ba, j.error])
    return fingerprint_obj({
        "version": arena.__version__, "names": list(plan.names), "cards": [_card(c) for c in ckpts],
        "prompts": [[p.id, h] for p, h in zip(prompts, phash)], "pairs": [list(p) for p in plan.pairs],
        "cmp_keys": [list(k) for k in plan.cmp_keys], "gen_keys": len(plan.gen_keys),
        "judge": [spec, judge_fingerprint], "params": pkey, "verdicts": verdicts,
        "analysis": [config.rounds, config.level, config.prior, config.seed]
        + (["style_control"] if config.style_control else []),
    })


def _reports_match(out: Path, result: dict) -> bool:
    """True when every report file exists and results.json holds exactly `result`."""
    from arena.report import OUTPUT_FILES

    if not all((out / name).is_file() for name in OUTPUT_FILES):
        return False
    try:
        return json.loads((out / "results.json").read_text(encoding="utf-8")) == result
    except (OSError, ValueError):
        return False


def analyse(ckpts, prompts, plan: Plan, judged: dict, phash, fps, *, config: TournamentConfig, progress=None,
            texts: dict | None = None) -> Result:
    """Records from the plan's comparisons (failures left out), then `arena.analysis`; with
    `config.style_control`, style control on the stored responses `texts` (arena.style_tournament)."""
    import judges
    from arena.analysis import analyze_records
    from arena.core.records import make_records
    from arena.store import lookup

    playing = sorted({i for pair in plan.pairs for i in pair})
    names = [c.name for c in ckpts]
    a_names, b_names, scores, clusters, verdicts, responses = [], [], [], [], [], []
    for a, b, p, s in plan.cmp_keys:
        j = lookup(judged, phash[p], s, fps[a], fps[b])
        if j is None:
            raise RuntimeError(f"comparison {names[a]} vs {names[b]} on prompt {prompts[p].id} is missing from the store")
        verdicts.append(judges.PairVerdict(j.p, j.p_ab, j.p_ba, j.error))
        if j.p is not None:
            a_names.append(names[a])
            b_names.append(names[b])
            scores.append(j.p)
            clusters.append(p)
            if config.style_control:
                responses.append((texts[(fps[a], phash[p], s)], texts[(fps[b], phash[p], s)]))
    failures = len(verdicts) - len(scores)
    if not scores:
        example = next(v.error for v in verdicts if v.error)
        raise InputError(f"every judgment failed (e.g. {example}); fix the judge and rerun (add --retry-failures)")
    records = make_records(a_names, b_names, scores, cluster=clusters, models=[names[i] for i in playing])
    result = analyze_records(records, rounds=config.rounds, seed=config.seed, level=config.level, prior=config.prior,
                             progress=progress)
    if config.style_control:
        from arena.style_tournament import tournament_style_control

        result = tournament_style_control(result, records, responses, rounds=config.rounds, seed=config.seed,
                                          level=config.level)
    report = judges.position_report(verdicts)
    return replace(
        result,
        run=RunInfo(generations=len(plan.gen_keys), judgments=2 * len(plan.cmp_keys),
                    comparisons=len(plan.cmp_keys), failures=failures),
        judge=JudgeInfo(position_consistency=report["consistency"],
                        first_position_rate=report["first_position_rate"], failures=failures),
        checkpoints={ckpts[i].name: _card(ckpts[i]) for i in playing},
    )


def _judge_health(result: Result, label_mass: list[tuple[int, float]]) -> Result:
    """The result with the label mass of the judge calls made in this run (None when none
    reported it: reused judgments, or a judge without label tokens), the warnings of
    `arena.analysis.judge_warnings` and the plain-language reading."""
    from arena.analysis import judge_warnings
    from arena.report import plain_reading

    total = sum(k for k, _ in label_mass)
    judge = replace(result.judge, label_mass_mean=sum(k * m for k, m in label_mass) / total if total else None)
    judge = replace(judge, warnings=judge_warnings(judge, comparisons=result.run.comparisons))
    result = replace(result, judge=judge)
    return replace(result, reading=plain_reading(result))


def _card(c) -> dict:
    card = {"fingerprint": c.fingerprint, "kind": c.kind}
    for k, v in (c.card or {}).items():
        card.setdefault(k, v)
    return card
