"""Tournaments between checkpoints: plan, generate what is missing, judge what is missing,
analyse. Resumable after a kill, incremental when a checkpoint is added.

Phases. `run_tournament` checks every input, then `_plan_and_run` runs the phases: `plan`
(every generation and comparison the run may need, against the store), then a loop driven by
a scheduler (`arena.adaptive`): `next_batch` returns the next (a, b, prompt, sample)
comparisons from the stored verdicts; `generate` makes the responses they need
(`needed_generations`; for an engine that declares `prefetch`, such as vllm, every response of
each checkpoint it touches: `whole_checkpoints`), `judge_all`/`judge_batch` judge and store
them; `collect` reads the store back; and `analyse` (through `_analyse_and_write`) computes
and writes the result. `RoundRobinSchedule` returns every missing comparison in one batch (the
round robin, byte for byte as before the split); `AdaptiveSchedule` (`adaptive=True`) one
design step at a time (docs/adaptive.md).

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
(checkpoint fingerprint, prompt hash, generation key, judge fingerprint): a rerun
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
from dataclasses import dataclass, field, replace
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
    max_new_tokens: int | None = None
    """Generation length limit; None = each checkpoint's generation_config.json, else 64 (`arena.generation`)."""
    temperature: float | None = None
    """Sampling temperature (0 = greedy); None = each checkpoint's generation_config.json, else 1.0."""
    top_p: float | None = None
    """Nucleus sampling mass; None = each checkpoint's generation_config.json, else 1.0."""
    top_k: int | None = None
    """Keep the k most probable tokens (0 = off); None = each checkpoint's generation_config.json, else off."""
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
    model_cache_mb: float | None = None
    """hf engine: MiB of loaded checkpoints kept between calls (`arena.engines.hf.ModelCache`); 0 = load
    on every call; None = `arena.engines.hf.CACHE_SHARE` of the memory the models run in."""
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
    adaptive: bool = False
    """Judge adaptively (`arena.adaptive.AdaptiveSchedule`): only the comparisons the verdict needs."""
    target: str | None = None
    """With adaptive: when to stop, nash:EPS (U_nash <= EPS; default nash:0.05) or top (top set certified)."""
    budget: int | None = None
    """With adaptive: hard limit on judge calls (2 per comparison)."""
    weights: tuple[tuple[str, float], ...] | None = None
    """Vector judges: criterion weights ((name, w), ...) for the weighted Nash (arena.tournament_criteria)."""
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


def adaptive_target(config: TournamentConfig):
    """The `arena.core.design.Target` of an adaptive run (None without --adaptive); checks the options."""
    from arena.core.design import parse_target

    if not config.adaptive:
        if config.target is not None or config.budget is not None:
            raise InputError("--target and --budget steer an adaptive run: add --adaptive, or drop them")
        return None
    if config.pairs is not None:
        raise InputError("--adaptive chooses the pairs itself: drop --pairs (or drop --adaptive to judge only those pairs)")
    if config.retry_failures:
        raise InputError("--retry-failures judges the stored failures again in a round robin: run it without "
                         "--adaptive first, then continue with --adaptive")
    return parse_target(config.target or "nash:0.05", budget=config.budget)


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
    from arena.checkpoints import dedupe_checkpoints, discover_checkpoints, read_generation_config, validate_checkpoint
    from arena.engines import ENGINES, get_engine
    from arena.fingerprint import FingerprintCache
    from arena.generation import GenerationKeys, resolve_settings
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
    # Settings per checkpoint: flag > its generation_config.json > default (arena.generation).
    user = {"max_new_tokens": config.max_new_tokens, "temperature": config.temperature, "top_p": config.top_p,
            "top_k": config.top_k}
    fixed = dict(seed=config.seed, stop=config.stop, prompt_format=fmt, dtype=config.dtype)
    resolve_settings(user, {}, engine=config.engine, **fixed)  # a bad flag fails before any work
    out = Path(config.out) if config.out is not None else default_run_dir(config.ckpts_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"run directory {out} is a file; pass --out with a directory path")
    # What the run directory already holds: fingerprints (so unchanged checkpoints are not
    # hashed again) and generations (so checkpoints with nothing left to generate are not loaded).
    ro = Store.open_readonly(out) if out.is_dir() else None
    fp_cache = FingerprintCache(known=ro.fingerprints() if ro else {})
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
    flags = {k for k, v in user.items() if v is not None}  # a flag replaces the file's value, even a bad one
    settings = {c.fingerprint: resolve_settings(user, read_generation_config(c, ignore=flags), engine=config.engine,
                                                engine_options=config.engine_options, **fixed) for c in ckpts}
    keys = GenerationKeys({fp: s.key for fp, s in settings.items()})
    ro = Store.open_readonly(out) if out.is_dir() else None
    gens_done = keys.generations(ro) if ro else {}
    if ro:
        ro.close()
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
    from arena.tournament_criteria import check_weights_for

    check_weights_for(judge, config.weights)
    if config.adaptive and judges.base.is_vector(judge):
        raise ConfigError("--adaptive takes a scalar judge; a vector judge (criteria) runs the full round robin: "
                          "drop --adaptive")
    if config.engine_options and config.engine != "vllm":
        raise ConfigError(f"--engine-option is for --engine vllm; --engine {config.engine} takes none: drop it")
    if config.model_cache_mb is not None and config.engine != "hf":
        raise ConfigError(f"--model-cache-mb is for --engine hf (it keeps loaded checkpoints in this process); "
                          f"--engine {config.engine} loads them elsewhere: drop it")
    extra = {"llm_options": dict(config.engine_options)} if config.engine_options else {}
    if config.model_cache_mb is not None:
        extra["cache_mb"] = config.model_cache_mb
    engine = get_engine(config.engine, batch_size=config.batch_size, base_url=config.base_url,
                        trust_remote_code=config.trust_remote_code, allow_pickle=config.allow_pickle, **extra)
    if config.judge_batch_size < 1:
        raise ConfigError(f"judge_batch_size must be >= 1; got {config.judge_batch_size}")
    if out.resolve() == Path(config.ckpts_dir).resolve() or Path(config.ckpts_dir).resolve() in out.resolve().parents:
        raise InputError(f"run directory {out} is inside the checkpoint folder; put --out elsewhere")
    target = adaptive_target(config)

    run = Setup(config=config, console=console, ckpts=tuple(ckpts), discovery=discovery,
                duplicates=unique.duplicates, prompts=tuple(prompts), pairs=tuple(pairs), spec=spec, judge=judge,
                engine=engine, out=out, settings=settings, keys=keys, started=started, fp_cache=fp_cache, target=target)
    try:
        if config.dry_run:
            return _plan_and_run(run)
        # One writer per run directory; the lock is taken before planning, so a second run
        # waits for nothing and redoes nothing: it stops with the holder's pid.
        with run_lock(out):
            return _plan_and_run(run)
    finally:  # the models the engine kept between steps are not held after the run
        if hasattr(engine, "close"):
            engine.close()


@dataclass(frozen=True)
class Setup:
    """What every phase of one run shares, fixed once the inputs are checked (`run_tournament`)."""

    config: TournamentConfig
    console: object
    ckpts: tuple
    discovery: object
    duplicates: dict
    prompts: tuple
    pairs: tuple[tuple[int, int], ...]
    spec: str
    judge: object
    engine: object
    out: Path
    settings: dict
    """Each checkpoint's resolved generation settings (`arena.generation.CheckpointSettings`), by fingerprint."""
    keys: object
    """`arena.generation.GenerationKeys`: the store keys of each checkpoint's responses and each pair's verdicts."""
    started: float
    fp_cache: object
    target: object = None
    """`arena.core.design.Target` of an adaptive run, else None (round robin)."""

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.ckpts]

    @property
    def fps(self) -> list[str]:
        return [c.fingerprint for c in self.ckpts]

    @property
    def phash(self) -> list[str]:
        return [p.hash for p in self.prompts]

    @property
    def prefetch(self) -> bool:
        """Whether the engine generates all of a checkpoint's responses at its first use
        (`whole_checkpoints`; vllm, whose checkpoint switch is the expensive part)."""
        return getattr(self.engine, "prefetch", False)


@dataclass
class Work:
    """What this invocation did (counts and the judge's per-call diagnostics); the store holds the rest."""

    generated: set = field(default_factory=set)  # the (checkpoint, prompt, sample) keys generated
    comparisons: int = 0
    t_gen: float = 0.0
    t_judge: float = 0.0
    label_mass: list = field(default_factory=list)  # (judgments, mean label mass) per judge call that reports it
    calls: list = field(default_factory=list)  # the judge's per-call diagnostics (openai: logprob/text/... counts)

    @property
    def generations(self) -> int:
        return len(self.generated)


# ---- phases: plan / generate / judge(batch) / collect / analyse ---------------------------
# A scheduler (`arena.adaptive`: `RoundRobinSchedule`, `AdaptiveSchedule`) returns the next batch
# of (a, b, prompt, sample) comparisons from what the store holds; `_plan_and_run` generates the
# responses the batch needs, judges it and asks again, until the scheduler returns nothing.


def plan(run: Setup, *, gens_done: dict, judged: dict) -> Plan:
    """Every generation and comparison the run may need, and which of them the store lacks."""
    from arena.store import lookup

    fps, phash, config = run.fps, run.phash, run.config
    S = range(config.samples)
    playing = sorted({i for pair in run.pairs for i in pair})  # with --pairs, only the checkpoints in a pair
    gen_keys = [(c, p, s) for c in playing for p in range(len(run.prompts)) for s in S]
    gen_todo = [k for k in gen_keys if (fps[k[0]], phash[k[1]], k[2]) not in gens_done]
    cmp_keys = [(a, b, p, s) for a, b in run.pairs for p in range(len(run.prompts)) for s in S]

    def pending(k):
        j = lookup(judged, phash[k[2]], k[3], fps[k[0]], fps[k[1]])
        return j is None or (config.retry_failures and j.p is None)

    cmp_todo = [k for k in cmp_keys if pending(k)]
    return Plan(tuple(run.names), tuple(run.pairs), tuple(gen_keys), tuple(gen_todo), tuple(cmp_keys), tuple(cmp_todo))


def needed_generations(run: Setup, comparisons, texts: dict) -> list[tuple[int, int, int]]:
    """The (checkpoint, prompt, sample) responses `comparisons` need that `texts` lacks, in
    checkpoint, prompt, sample order (lazy generation: nothing a chosen comparison does not use)."""
    fps, phash = run.fps, run.phash
    need = {(c, p, s) for a, b, p, s in comparisons for c in (a, b)}
    return sorted(k for k in need if (fps[k[0]], phash[k[1]], k[2]) not in texts)


def whole_checkpoints(run: Setup, todo, gen_keys, texts: dict) -> list[tuple[int, int, int]]:
    """`todo` widened to every response of `gen_keys` (the plan's) that `texts` lacks, for each
    checkpoint `todo` touches, in checkpoint, prompt, sample order.

    For an engine whose checkpoint switch is the expensive part (`prefetch = True`: vLLM builds an
    `LLM` per checkpoint, seconds to minutes, and holds one per device): the first step that
    needs a checkpoint generates all it can ever be asked for, so each checkpoint is loaded at
    most once per invocation. The responses are those lazy generation would make (a request's
    seed depends on its key only), so the comparisons judged do not change; only responses no
    comparison uses may be generated too.
    """
    fps, phash = run.fps, run.phash
    touched = {c for c, _, _ in todo}
    ahead = {k for k in gen_keys if k[0] in touched and (fps[k[0]], phash[k[1]], k[2]) not in texts}
    return sorted(ahead | set(todo))


def generate(run: Setup, store, todo, work: Work) -> None:
    """Generate `todo` (checkpoint, prompt, sample) responses into the store, one short
    transaction per engine batch, checkpoint by checkpoint."""
    from arena.engines import Request, request_seed

    config, fps, phash = run.config, run.fps, run.phash
    t_gen = time.perf_counter()
    with _progress(run.console) as bar:
        task = bar.add_task("generating", total=len(todo))
        for ci, c in enumerate(run.ckpts):
            mine = [k for k in todo if k[0] == ci]
            if not mine:
                continue
            bar.update(task, description=f"generating {c.name}")
            if c.kind == "gguf" and config.engine == "hf":  # dequantised once per file, not on every run
                c = _converted_gguf(c, run.out, run.console)
            reqs = [Request(run.prompts[p].text, request_seed(config.seed, fps[ci], phash[p], s)) for _, p, s in mine]
            for batch in run.engine.generate(c, reqs, run.settings[fps[ci]].params):
                store.put_generations((fps[ci], phash[mine[i][1]], mine[i][2], run.keys.of(fps[ci]), reqs[i].seed,
                                       text) for i, text in batch)
                bar.advance(task, len(batch))
        bar.update(task, description="generating")
    work.generated.update(todo)
    work.t_gen += time.perf_counter() - t_gen


def judge_batch(run: Setup, store, chunk, texts: dict, work: Work) -> None:
    """Judge `chunk` (a, b, prompt, sample) in both positions; one store transaction for its verdicts
    (and, for a vector judge, each criterion's verdict: `arena.tournament_criteria`)."""
    import judges
    from arena.store import Judgment
    from arena.tournament_criteria import criterion_rows, judge_comparisons

    judge, fps, phash, prompts = run.judge, run.fps, run.phash, run.prompts
    comps = [judges.Comparison(prompts[p].text, texts[(fps[a], phash[p], s)], texts[(fps[b], phash[p], s)])
             for a, b, p, s in chunk]
    verdicts, per_criterion = judge_comparisons(judge, comps)
    if hasattr(judge, "diagnostics"):  # label mass of this call's 2·len(chunk) judgments
        mass = judge.diagnostics().get("label_mass_mean")
        if mass is not None:
            work.label_mass.append((2 * len(chunk), mass))
    rows = [(phash[p], s, a, b, Judgment(v.p, v.p_ab, v.p_ba, v.error)) for (a, b, p, s), v in zip(chunk, verdicts)]
    for key, group in run.keys.by_pair(rows, fps).items():  # a pair's key covers both responses
        store.put_judgments(judge.fingerprint, key, group, replace=run.config.retry_failures)
    if per_criterion is not None:  # a vector judge: each criterion's verdict too
        rows = criterion_rows([(phash[p], s, a, b) for a, b, p, s in chunk], per_criterion)
        for key, group in run.keys.by_pair(rows, fps).items():
            store.put_criterion_judgments(judge.fingerprint, key, group, replace=run.config.retry_failures)
    notes = _fallback_notes(judge, len(chunk))
    if notes is not None:
        rows = [(phash[p], s, a, b, note) for (a, b, p, s), note in zip(chunk, notes)]
        for key, group in run.keys.by_pair(rows, fps).items():
            store.put_notes(judge.fingerprint, key, group)
    if hasattr(judge, "diagnostics"):
        work.calls.append(judge.diagnostics())
    work.comparisons += len(chunk)


def judge_all(run: Setup, store, todo, texts: dict, work: Work) -> None:
    """Judge `todo` in chunks of `judge_batch_size` comparisons (one judge call and one transaction each)."""
    t_judge = time.perf_counter()
    with _progress(run.console) as bar:
        task = bar.add_task("judging", total=2 * len(todo))
        for start in range(0, len(todo), run.config.judge_batch_size):
            chunk = todo[start:start + run.config.judge_batch_size]
            judge_batch(run, store, chunk, texts, work)
            bar.advance(task, 2 * len(chunk))
    work.t_judge += time.perf_counter() - t_judge


def collect(run: Setup, store) -> tuple[dict, dict, dict]:
    """(generations, judgments, notes) the store holds for this run's generation keys and judge."""
    return (run.keys.generations(store), run.keys.judgments(store, run.judge.fingerprint),
            run.keys.notes(store, run.judge.fingerprint))


def _plan_and_run(run: Setup) -> Result | dict:
    from arena.adaptive import AdaptiveSchedule, RoundRobinSchedule, adaptive_summary, record_trace, trace_key
    from arena.store import Store
    from judges.base import is_vector

    config, console, out = run.config, run.console, run.out
    # ---- 2. plan against what the store already holds -----------------------------------
    ro = Store.open_readonly(out)
    gens_done = run.keys.generations(ro) if ro else {}
    judged = run.keys.judgments(ro, run.judge.fingerprint) if ro else {}
    if ro:
        ro.close()
    the_plan = plan(run, gens_done=gens_done, judged=judged)
    gen_todo = the_plan.gen_todo
    # The engine is checked only when there is something to generate (the checkpoints that
    # generate were validated in run_tournament), so a rerun that reuses everything loads nothing.
    # An adaptive run checks it before its first generation (it may need none).
    if gen_todo and run.target is None and hasattr(run.engine, "check"):
        run.engine.check()
    summary = the_plan.summary()
    _note(console, f"plan: {len(run.names)} checkpoints, {len(run.prompts)} prompts × {config.samples} samples, "
                   f"{len(run.pairs)} pairs; generations {summary['generations']['done']} reused + "
                   f"{summary['generations']['todo']} new; judge calls {summary['judgments']['done']} reused + "
                   f"{summary['judgments']['todo']} new (run dir {out})")
    if config.dry_run:
        return {"dry_run": True, "plan": summary, "out": str(out),
                "judge": {"spec": run.spec, "fingerprint": run.judge.fingerprint},
                "checkpoints": {c.name: {"fingerprint": c.fingerprint, "kind": c.kind,
                                         "generations_todo": sum(1 for k in gen_todo if k[0] == i),
                                         "generation_settings": _settings_record(run.settings[c.fingerprint], config)}
                                for i, c in enumerate(run.ckpts)},
                "skipped": {s.name: s.reason for s in run.discovery.skipped},
                "duplicates": {k: list(v) for k, v in run.duplicates.items()},
                **({"adaptive": _dry_run_adaptive(run, the_plan)} if run.target is not None else {})}

    # ---- 3-4. generate what the next batch needs, judge it, until the scheduler is done ------
    if run.target is None:
        scheduler = RoundRobinSchedule(the_plan, retry_failures=config.retry_failures)
    else:
        scheduler = AdaptiveSchedule(the_plan, target=run.target, seed=config.seed, step=config.judge_batch_size)
        key = trace_key(run, scheduler)
    work = Work()
    store = Store.open(out)
    try:
        store.put_fingerprints(run.fp_cache.fresh)
        store.put_checkpoints(run.ckpts)
        store.put_prompts(run.prompts)
        attempted: set = set()  # a comparison is judged at most once per invocation (a retried failure too)
        while True:
            texts, judged, _ = collect(run, store)
            decision = scheduler.next_batch(run, judged)
            if decision.trace is not None:  # written before the batch is judged: a resumed run rebuilds it
                trace = record_trace(store, key, decision.trace)
                _note(console, _trace_note(decision.trace, run.target))
            batch = [k for k in decision.comparisons if k not in attempted]
            if not batch:
                break
            todo = needed_generations(run, batch, texts)
            if todo and run.prefetch:
                todo = whole_checkpoints(run, todo, the_plan.gen_keys, texts)
            if todo and run.target is not None and not work.generations and hasattr(run.engine, "check"):
                run.engine.check()
            generate(run, store, todo, work)
            texts = run.keys.generations(store)
            missing = needed_generations(run, batch, texts)
            if missing:  # an engine that skipped a request is a bug; never judge around a hole
                raise RuntimeError(f"engine {config.engine} left {len(missing)} requests unanswered")
            judge_all(run, store, batch, texts, work)
            attempted.update(batch)
        _, judged, notes = collect(run, store)
    finally:
        store.close()

    if is_vector(run.judge):  # one analysis per criterion, and their combinations
        from arena.tournament_criteria import analyse_criteria_run

        gen_keys, cmp_keys = the_plan.gen_keys, the_plan.cmp_keys
        return analyse_criteria_run(
            run.ckpts, run.prompts, the_plan, run.phash, run.fps, config=config, spec=run.spec, judge=run.judge,
            keys=run.keys, out=out, new={"generations": work.generations, "judgments": 2 * work.comparisons},
            reused={"generations": len(gen_keys) - work.generations,
                    "judgments": 2 * (len(cmp_keys) - work.comparisons)}, console=console,
            generation_settings={c.fingerprint: _settings_record(run.settings[c.fingerprint], config) for c in run.ckpts})
    # ---- 5. analyse, unless this exact analysis is stored ----------------------------------
    if run.target is None:
        return _analyse_and_write(run, the_plan, judged, notes, work)
    # An adaptive run is analysed on the comparisons it judged: each cell from its own verdicts.
    stored = scheduler.stored(run, judged)
    adaptive = adaptive_summary(run, scheduler, stored, trace=trace, stop=decision.stop)
    _note(console, f"adaptive: stopped ({decision.stop}) after {adaptive['calls']} judge calls and "
                   f"{adaptive['generations']} generations; the round robin: {adaptive['round_robin_calls']} and "
                   f"{adaptive['round_robin_generations']}")
    gens = sorted({(c, p, s) for a, b, p, s in stored for c in (a, b)})
    judged_plan = replace(the_plan, gen_keys=tuple(gens), gen_todo=(), cmp_keys=tuple(stored), cmp_todo=())
    return _analyse_and_write(run, judged_plan, judged, notes, work, adaptive=adaptive)


def _trace_note(entry: dict, target) -> str:
    from arena.adaptive import target_text

    u = entry["nash_tv_upper"]
    return (f"adaptive step: {entry['calls']} judge calls, U_nash {'-' if u is None else f'{u:.3f}'}, undecided "
            f"top-set pairs {'-' if entry['undecided_top'] is None else entry['undecided_top']} "
            f"(target {target_text(target)}{'' if target.budget is None else f', budget {target.budget}'})")


def _dry_run_adaptive(run: Setup, the_plan: Plan) -> dict:
    from arena.adaptive import dry_run_estimate

    est = dry_run_estimate(n=len(run.names), prompts=len(run.prompts), samples=run.config.samples, target=run.target,
                           step=run.config.judge_batch_size)
    generation = ("per checkpoint: all of a checkpoint's responses at the first step that needs one (the "
                  f"{run.config.engine} engine loads each checkpoint once per run)"
                  if run.prefetch else "lazy: only the responses the chosen comparisons use")
    return {**est, "calls_done": 2 * (len(the_plan.cmp_keys) - len(the_plan.cmp_todo)), "generation": generation}


def _analyse_and_write(run: Setup, the_plan: Plan, judged: dict, notes: dict, work: Work, *,
                       adaptive: dict | None = None) -> Result:
    """Analyse `the_plan`'s comparisons (stored analysis reused when its key matches), write the reports.
    `adaptive`: the adaptive run's summary, part of the key and of results.json (key `adaptive`)."""
    from arena.store import Store

    config, console, out = run.config, run.console, run.out
    ckpts, prompts, phash, fps, duplicates = run.ckpts, run.prompts, run.phash, run.fps, run.duplicates
    gen_keys, cmp_keys = the_plan.gen_keys, the_plan.cmp_keys
    key = analysis_key(ckpts, prompts, the_plan, judged, phash, fps, config=config, spec=run.spec,
                       judge_fingerprint=run.judge.fingerprint, pkey=run.keys.token())
    if adaptive is not None:
        from arena.fingerprint import fingerprint_obj

        key = fingerprint_obj({"analysis": key, "adaptive": adaptive})
    with Store.open(out) as store:
        stored = store.analysis(key)
        texts = run.keys.generations(store) if config.style_control and stored is None else None   # style features
    if stored is None:
        with _progress(console) as bar:
            task = bar.add_task("bootstrap", total=config.rounds)
            result = analyse(ckpts, prompts, the_plan, judged, phash, fps, config=config, texts=texts,
                             progress=lambda done, total: bar.update(task, completed=done, total=total))
            bar.update(task, completed=config.rounds)
        new = {"generations": work.generations, "judgments": 2 * work.comparisons}
        if run.prefetch:  # responses generated ahead that no analysed comparison uses
            new["unjudged_generations"] = len(work.generated - set(gen_keys))
        run_info = replace(result.run, new=new,
                           reused={"generations": len(set(gen_keys) - work.generated),
                                   "judgments": 2 * (len(cmp_keys) - work.comparisons)})
        checkpoints = {name: {**card, "generation_settings": _settings_record(run.settings[card["fingerprint"]], config)}
                       for name, card in result.checkpoints.items()}
        if duplicates:  # copies share their entity's rating and Nash mass (never matched against it)
            checkpoints = {name: {**card, "duplicates": list(duplicates[name])} if name in duplicates else card
                           for name, card in checkpoints.items()}
        # Text verdicts the judge substituted for unusable logprobs (opt-in), over the whole plan,
        # and the judge's own counts for the calls made by this invocation.
        text_fallbacks = sum(1 for a, b, p, s in the_plan.cmp_keys if (phash[p], s, *sorted((fps[a], fps[b]))) in notes)
        counts = {k: sum(d.get(k, 0) for d in work.calls) for k in ("from_logprobs", "from_text", "text_fallbacks",
                                                                    "failures")
                  if any(k in d for d in work.calls)}
        result = replace(result, run=run_info, checkpoints=checkpoints,
                         judge=replace(result.judge, spec=run.spec, fingerprint=run.judge.fingerprint,
                                       text_fallbacks=text_fallbacks, calls=counts or None),
                         duplicates={k: list(v) for k, v in duplicates.items()} if duplicates else None)
        if adaptive is not None:
            result = replace(result, extra={**result.extra, "adaptive": adaptive})
        result = _judge_health(result, work.label_mass)
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
    info = result.run
    _note(console, f"reused {info.reused['generations']} generations and {info.reused['judgments']} judge calls; "
                   f"new: {info.new['generations']} generations ({work.t_gen:.1f} s), {info.new['judgments']} judge "
                   f"calls ({work.t_judge:.1f} s); failures {info.failures}; text fallbacks "
                   f"{result.judge.text_fallbacks or 0}; total {time.perf_counter() - run.started:.1f} s")
    if config.write_reports and not reports_current:
        from arena.report import write_outputs

        write_outputs(json.loads(stored) if stored is not None else result, out)
        _note(console, f"wrote {out}/results.json, matrix.csv, plots and report.html")
    return result

def _settings_record(settings, config: TournamentConfig) -> dict:
    """results.json's per-checkpoint `generation_settings` (`arena.generation.settings_record`)."""
    from arena.generation import settings_record

    prompts = resolve_prompts_path(config)
    return settings_record(settings, engine=config.engine, samples=config.samples,
                           prompts=None if prompts is None else str(prompts))


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
