"""Convert a GGUF file into a safetensors checkpoint directory, tokenizer included.

transformers reads a GGUF file (`from_pretrained(dir, gguf_file=name)`, through the `gguf`
package) by dequantising every tensor, which takes as long as loading the model twice. A
converted directory is an ordinary Hugging Face checkpoint (`config.json`,
`model.safetensors`, tokenizer files) that loads at the speed of safetensors and is accepted
by every command. The quantisation settings are dropped before saving
(`config.quantization_config` and `model.hf_quantizer`), since the weights are already
dequantised and transformers would otherwise refuse to save them.

`convert_gguf` writes into a temporary directory beside OUT_DIR and renames it into place at
the end: an interrupted conversion leaves nothing. `cached_conversion` keeps one converted
copy per GGUF fingerprint in a tournament's run directory, so a `.gguf` checkpoint is
dequantised once, not on every run.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from arena.errors import CheckpointError, InputError, require

#: Where a tournament keeps its converted GGUF checkpoints, inside the run directory.
CONVERTED_DIR = "converted-gguf"


def check_gguf_file(path: Path) -> None:
    """InputError unless `path` is a readable file that starts with the GGUF magic."""
    if not path.exists():
        raise InputError(f"{path} does not exist; pass the path of a .gguf file")
    if not path.is_file():
        raise InputError(f"{path} is not a file; pass the path of a .gguf file")
    with path.open("rb") as fh:
        if fh.read(4) != b"GGUF":
            raise InputError(f"{path} is not a GGUF file (no GGUF magic); re-download it")


def convert_gguf(gguf_path: str | Path, out_dir: str | Path, *, card: dict | None = None) -> Path:
    """Dequantise `gguf_path` once and save it as a safetensors checkpoint in `out_dir`.

    Refuses an existing `out_dir` (InputError: choose another or remove it). `card`, when
    given, is written as `arena_card.json` (provenance). Returns `out_dir`.
    """
    gguf_path, out_dir = Path(gguf_path), Path(out_dir)
    check_gguf_file(gguf_path)
    if out_dir.exists():
        raise InputError(f"{out_dir} already exists; choose another OUT_DIR or remove it (nothing is overwritten)")
    require("gguf", "gguf")
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        tok = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    except Exception as error:  # transformers raises many types for an unsupported file
        raise CheckpointError(f"cannot read GGUF file {gguf_path}: {error}; check that transformers supports "
                              "its architecture (see the transformers GGUF docs)") from error
    # Already dequantised: without this, save_pretrained refuses a "quantized" model.
    model.config.quantization_config = None
    model.hf_quantizer = None
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        if card is not None:
            (tmp / "arena_card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
        os.chmod(tmp, 0o755)
        os.replace(tmp, out_dir)  # atomic: out_dir appears complete or not at all
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def cached_conversion(gguf_path: str | Path, fingerprint: str, cache_dir: str | Path) -> Path:
    """The converted checkpoint of `gguf_path` under `cache_dir/<fingerprint>`, converting once.

    Keyed by the GGUF file's content fingerprint: a changed file is converted again, a
    renamed one is not.
    """
    target = Path(cache_dir) / fingerprint
    if (target / "config.json").is_file():
        return target
    return convert_gguf(gguf_path, target, card={"converted_from": Path(gguf_path).name, "gguf_fingerprint": fingerprint})
