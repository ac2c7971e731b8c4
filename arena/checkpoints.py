"""Find the checkpoints in a directory and check them before any long work starts.

Each entry of `CKPTS_DIR` is one of:

- a Hugging Face causal LM directory (`config.json` + `*.safetensors` + tokenizer files);
- a PEFT adapter directory (`adapter_config.json`) over a base model found locally (an
  absolute path, a path relative to the adapter, or a sibling directory of that name);
- a GGUF file (`*.gguf`, loaded by transformers with `gguf_file=`; needs the `gguf` extra).

Anything else is *listed with the reason* it is not a checkpoint, never skipped silently.
An entry that claims to be a model but cannot be one (corrupt or truncated safetensors,
pickle-only weights without `allow_pickle`, a tokenizer that does not load, a PEFT adapter
whose base is missing) is an error naming the entry and the fix, raised before any
generation: a tournament that silently drops a model the user meant to include is worse
than one that stops.

Every checkpoint carries a content fingerprint (`arena.fingerprint.fingerprint_path`), so a
renamed directory reuses its work and a retrained one with new weights never does, and the card
`arena_card.json` written by the trainers when it is present. With a
`arena.fingerprint.FingerprintCache` (the run store's), an unchanged checkpoint is not hashed
again.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from arena.errors import CheckpointError, InputError
from arena.fingerprint import FingerprintCache, fingerprint_obj, fingerprint_path
from arena.loading import PICKLE_WEIGHTS, check_checkpoint_dir

CARD = "arena_card.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "spiece.model")


@dataclass(frozen=True)
class Checkpoint:
    name: str
    """Display name: the directory (or GGUF file stem) name inside CKPTS_DIR."""
    path: Path
    """The directory, or the `.gguf` file."""
    kind: str
    """'hf', 'peft' or 'gguf'."""
    fingerprint: str
    """Content hash (16 hex); for PEFT the hash of adapter and base together."""
    card: dict | None = None
    """`arena_card.json` when present (algorithm, config, parent, seed, created)."""
    base: Path | None = None
    """PEFT only: the base model directory."""


@dataclass(frozen=True)
class Skipped:
    name: str
    """Entry name inside CKPTS_DIR."""
    reason: str
    """Why it is not a checkpoint."""


@dataclass(frozen=True)
class Discovery:
    checkpoints: tuple[Checkpoint, ...]
    """The checkpoints, sorted by name."""
    skipped: tuple[Skipped, ...] = field(default_factory=tuple)
    """Entries that are not checkpoints, with the reason."""


def discover_checkpoints(ckpts_dir: str | Path, *, allow_pickle: bool = False,
                         fingerprints: FingerprintCache | None = None) -> Discovery:
    """All checkpoints in `ckpts_dir` (see the module docstring); raises on missing/empty dirs.

    `fingerprints`: cache of already-hashed paths (read and extended; see `arena.fingerprint`).
    """
    ckpts_dir = Path(ckpts_dir)
    if not ckpts_dir.exists():
        raise InputError(f"checkpoint directory {ckpts_dir} does not exist; pass a directory holding one sub-directory per model")
    if not ckpts_dir.is_dir():
        raise InputError(f"{ckpts_dir} is not a directory; pass a directory holding one sub-directory per model")
    found: list[Checkpoint] = []
    skipped: list[Skipped] = []
    for entry in sorted(ckpts_dir.iterdir()):
        kind_or_reason = classify(entry)
        if kind_or_reason.startswith("skip:"):
            skipped.append(Skipped(entry.name, kind_or_reason[5:]))
            continue
        found.append(_make(entry, kind_or_reason, ckpts_dir, allow_pickle=allow_pickle, cache=fingerprints))
    if not found:
        listed = "; ".join(f"{s.name}: {s.reason}" for s in skipped) or "it is empty"
        raise InputError(
            f"no checkpoints in {ckpts_dir} ({listed}); put Hugging Face model directories "
            "(config.json + *.safetensors + tokenizer), PEFT adapters or .gguf files in it"
        )
    names = [c.name for c in found]
    if len(set(names)) != len(names):
        raise InputError(f"two checkpoints in {ckpts_dir} share a name ({names}); rename one")
    return Discovery(checkpoints=tuple(found), skipped=tuple(skipped))


def classify(entry: Path) -> str:
    """'hf' | 'peft' | 'gguf', or 'skip:<reason>' for an entry that is not a checkpoint."""
    if entry.name.startswith("."):
        return "skip:hidden entry"
    if entry.is_file():
        if entry.suffix.lower() == ".gguf":
            return "gguf"
        return "skip:a file, not a model directory or .gguf file"
    if not entry.is_dir():
        return "skip:not a regular file or directory"
    if (entry / "adapter_config.json").exists():
        return "peft"
    if (entry / "config.json").exists():
        return "hf"
    if not any(entry.iterdir()):
        return "skip:empty directory"
    return "skip:no config.json or adapter_config.json (not a Hugging Face model directory)"


def _make(entry: Path, kind: str, ckpts_dir: Path, *, allow_pickle: bool,
          cache: FingerprintCache | None = None) -> Checkpoint:
    card = read_card(entry) if entry.is_dir() else None
    if kind == "gguf":
        with entry.open("rb") as fh:
            magic = fh.read(4)
        if magic != b"GGUF":
            raise CheckpointError(f"{entry} is not a GGUF file (no GGUF magic); re-download it or move it out of the folder")
        return Checkpoint(entry.stem, entry, "gguf", fingerprint_path(entry, cache=cache), card)
    if kind == "hf":
        check_checkpoint_dir(entry, allow_pickle=allow_pickle)
        check_safetensors(entry)
        if not any((entry / f).exists() for f in TOKENIZER_FILES):
            raise CheckpointError(
                f"checkpoint {entry} has no tokenizer files; save one next to the weights with "
                "tokenizer.save_pretrained(), or move the directory out of the checkpoint folder"
            )
        return Checkpoint(entry.name, entry, "hf", fingerprint_path(entry, cache=cache), card)
    # PEFT adapter over a local base model.
    try:
        adapter = json.loads((entry / "adapter_config.json").read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{entry}/adapter_config.json cannot be read ({error}); re-save the adapter") from error
    base_name = adapter.get("base_model_name_or_path")
    if not base_name:
        raise CheckpointError(f"adapter {entry} names no base_model_name_or_path; set it to a local model directory")
    base = _resolve_base(str(base_name), entry, ckpts_dir)
    if base is None:
        raise CheckpointError(
            f"adapter {entry} needs base model {base_name!r}, which is not a local directory; set "
            "base_model_name_or_path in adapter_config.json to the base model's path (no downloads happen)"
        )
    weights = list(entry.glob("adapter_model*.safetensors"))
    pickled = [p for pat in PICKLE_WEIGHTS + ("adapter_model*.bin",) for p in entry.glob(pat)]
    if not weights and not (pickled and allow_pickle):
        hint = " (only pickle weights: convert to safetensors or pass --allow-pickle)" if pickled else ""
        raise CheckpointError(f"adapter {entry} has no adapter_model.safetensors{hint}; save it with save_pretrained()")
    check_safetensors(entry)
    check_checkpoint_dir(base, allow_pickle=allow_pickle)
    check_safetensors(base)
    fp = fingerprint_obj({"adapter": fingerprint_path(entry, cache=cache), "base": fingerprint_path(base, cache=cache)})
    return Checkpoint(entry.name, entry, "peft", fp, card, base=base)


def _resolve_base(name: str, entry: Path, ckpts_dir: Path) -> Path | None:
    for candidate in (Path(name), entry / name, ckpts_dir / name, ckpts_dir.parent / name):
        if candidate.is_dir() and (candidate / "config.json").exists():
            return candidate.resolve()
    return None


def read_card(path: Path) -> dict | None:
    """The `arena_card.json` of a checkpoint directory, None when absent."""
    card = path / CARD
    if not card.exists():
        return None
    try:
        data = json.loads(card.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        return {"invalid_card": f"{CARD} could not be read: {error}"}
    return data if isinstance(data, dict) else {"invalid_card": f"{CARD} is not a JSON object"}


def check_safetensors(path: Path) -> None:
    """Raise CheckpointError if any `*.safetensors` file in `path` is truncated or corrupt.

    Reads only the header: 8-byte little-endian length n, a JSON header of n bytes, then the
    tensor data, whose last offset must end exactly at the end of the file. This catches
    truncated downloads and overwritten files without loading a single tensor.
    """
    for file in sorted(path.glob("*.safetensors")):
        size = file.stat().st_size
        problem = None
        try:
            with file.open("rb") as fh:
                head = fh.read(8)
                if len(head) < 8:
                    problem = "shorter than a safetensors header"
                else:
                    (n,) = struct.unpack("<Q", head)
                    if n <= 0 or 8 + n > size:
                        problem = "header length points past the end of the file"
                    else:
                        header = json.loads(fh.read(n))
                        ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
                        if not ends:
                            problem = "holds no tensors"
                        elif 8 + n + max(ends) != size:
                            problem = f"data ends at byte {8 + n + max(ends)} but the file has {size} bytes (truncated?)"
        except (OSError, ValueError, KeyError, TypeError, IndexError) as error:
            problem = f"unreadable header ({error})"
        if problem:
            raise CheckpointError(f"weights {file} are corrupt: {problem}; re-save the checkpoint or move it out of the folder")


def check_tokenizer(ckpt: Checkpoint, *, trust_remote_code: bool = False):
    """Load the checkpoint's tokenizer once (cheap) so a broken one fails before generation;
    returns it (None for GGUF, whose tokenizer is inside the file)."""
    from arena.loading import load_tokenizer

    if ckpt.kind == "gguf":
        from arena.errors import require

        require("gguf", "gguf")  # transformers reads GGUF (tokenizer included) through this package
        return None
    where = ckpt.path if ckpt.kind == "hf" or any((ckpt.path / f).exists() for f in TOKENIZER_FILES) else ckpt.base
    return load_tokenizer(where, trust_remote_code=trust_remote_code)


def read_config(path: Path) -> dict:
    """config.json of a model directory as a dict; CheckpointError naming the fix otherwise."""
    file = Path(path) / "config.json"
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{file} cannot be read as JSON ({error}); re-save the checkpoint with save_pretrained()") from None
    if not isinstance(config, dict) or not (config.get("model_type") or config.get("architectures")):
        raise CheckpointError(f"{file} names no model_type or architectures; re-save the checkpoint with save_pretrained()")
    return config


def validate_checkpoint(ckpt: Checkpoint, *, trust_remote_code: bool = False) -> None:
    """Everything that can be checked without loading weights, before the first generation.

    Safetensors headers (at discovery), a readable config.json, no code shipped with the
    checkpoint (`auto_map` in config.json or tokenizer_config.json) unless `trust_remote_code`,
    a tokenizer that loads, and a tokenizer vocabulary that fits the model's embedding
    (`len(tokenizer) <= vocab_size`: a larger one produces ids the model has no row for).
    """
    if ckpt.kind == "gguf":
        check_tokenizer(ckpt, trust_remote_code=trust_remote_code)
        return
    model_dir = ckpt.path if ckpt.kind == "hf" else ckpt.base
    config = read_config(model_dir)
    if not trust_remote_code:
        for where in (model_dir / "config.json", ckpt.path / "tokenizer_config.json", model_dir / "tokenizer_config.json"):
            try:
                needs = "auto_map" in json.loads(where.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError, TypeError):
                needs = False
            if needs:
                raise CheckpointError(
                    f"checkpoint {ckpt.name} needs code shipped with it (auto_map in {where}); pass "
                    "--trust-remote-code if you trust its source, or move it out of the checkpoint folder")
    tok = check_tokenizer(ckpt, trust_remote_code=trust_remote_code)
    vocab = config.get("vocab_size") or (config.get("text_config") or {}).get("vocab_size")
    if tok is not None and isinstance(vocab, int) and len(tok) > vocab:
        raise CheckpointError(
            f"checkpoint {ckpt.name}: its tokenizer has {len(tok)} tokens but the model's vocab_size is {vocab}; "
            "save the tokenizer that belongs to this model (or resize the embeddings and re-save)")


@dataclass(frozen=True)
class Deduplicated:
    checkpoints: tuple[Checkpoint, ...]
    """One checkpoint per fingerprint (the first by name), in the original order."""
    duplicates: dict[str, tuple[str, ...]]
    """{kept name: other names with the same fingerprint}; empty when all differ."""


def dedupe_checkpoints(ckpts) -> Deduplicated:
    """Identical checkpoints (a copy, a symlink: the same fingerprint) become one entity.

    Comparing a model with itself measures nothing (P = ½ by symmetry) and would count as a
    match; the copies share the one entity's rating and Nash mass instead.
    """
    kept: dict[str, Checkpoint] = {}
    duplicates: dict[str, list[str]] = {}
    for c in ckpts:
        if c.fingerprint in kept:
            duplicates.setdefault(kept[c.fingerprint].name, []).append(c.name)
        else:
            kept[c.fingerprint] = c
    return Deduplicated(tuple(kept.values()), {k: tuple(v) for k, v in duplicates.items()})


GENERATION_CONFIG = "generation_config.json"
#: The sampling settings read from a checkpoint's generation_config.json (EOS ids are read by the engine).
GENERATION_FIELDS = ("max_new_tokens", "temperature", "top_p", "top_k")


def read_generation_config(ckpt: Checkpoint, *, ignore: Collection[str] = ()) -> dict:
    """The sampling settings that the checkpoint's `generation_config.json` sets *explicitly*.

    Only `max_new_tokens`, `temperature`, `top_p` and `top_k` present in the file are returned
    (transformers' implicit defaults, such as top_k = 50, are not applied: a key missing from
    the file is missing here), and an explicit `"do_sample": false` reads as temperature 0
    (greedy), as `model.generate` would decode. A PEFT adapter's own file wins over its base
    model's; a GGUF file has none ({}). A value of the wrong type or range is a CheckpointError
    naming the file, the key and the fix. Keys in `ignore` (those the user set by a flag) are
    neither read nor checked, so a flag is a fix for a bad value.
    """
    if ckpt.kind == "gguf":
        return {}
    dirs = [ckpt.path] + ([ckpt.base] if ckpt.kind == "peft" and ckpt.base is not None else [])
    file = next((d / GENERATION_CONFIG for d in dirs if (d / GENERATION_CONFIG).is_file()), None)
    if file is None:
        return {}
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{file} cannot be read as JSON ({error}); fix or delete it "
                              "(it only sets generation defaults)") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{file} is not a JSON object; fix or delete it (it only sets generation defaults)")

    def bad(key, rule):
        return CheckpointError(f"{file} has {key}={data[key]!r}, but {key} must be {rule}; fix the file, or "
                               f"override it with --{key.replace('_', '-')}")

    out = {}
    for key in GENERATION_FIELDS:
        value = data.get(key)
        if value is None or key in ignore:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise bad(key, "a number")
        if key in ("max_new_tokens", "top_k"):
            if value != int(value) or value < (1 if key == "max_new_tokens" else 0):
                raise bad(key, "an integer >= 1" if key == "max_new_tokens" else "an integer >= 0 (0 = off)")
            out[key] = int(value)
        elif key == "temperature":
            if value < 0:
                raise bad(key, ">= 0 (0 = greedy)")
            out[key] = float(value)
        else:
            if not 0 < value <= 1:
                raise bad(key, "in (0, 1]")
            out[key] = float(value)
    if data.get("do_sample") is False and "temperature" not in ignore:  # model.generate decodes greedily then
        out["temperature"] = 0.0
    return out
