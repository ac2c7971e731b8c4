"""Load a local Hugging Face checkpoint safely: safetensors only, no remote code, by default.

Every model the project touches (policies, judges, reward models, trainer inputs) goes
through `load_causal_lm` / `load_tokenizer`, so the safety defaults are written once:
pickle-based weights (`*.bin`, `*.pt`) are refused unless the user passes
`allow_pickle=True`, and `trust_remote_code` is off unless asked for.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

from arena.errors import CheckpointError

SAFE_WEIGHTS = ("*.safetensors",)
PICKLE_WEIGHTS = ("pytorch_model*.bin", "*.pt", "*.pth", "*.ckpt")


def check_checkpoint_dir(path: str | Path, *, allow_pickle: bool = False) -> Path:
    """Raise CheckpointError unless `path` is a directory with a config and loadable weights."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path} does not exist; pass a Hugging Face model directory")
    if not path.is_dir():
        raise CheckpointError(f"{path} is not a directory; pass a Hugging Face model directory (config.json + weights)")
    has_adapter = (path / "adapter_config.json").exists()
    if not (path / "config.json").exists() and not has_adapter:
        raise CheckpointError(f"{path} has no config.json; it is not a Hugging Face model directory")
    safe = any(any(path.glob(p)) for p in SAFE_WEIGHTS)
    pickled = any(any(path.glob(p)) for p in PICKLE_WEIGHTS)
    if not safe and pickled and not allow_pickle:
        raise CheckpointError(
            f"{path} has only pickle weights (*.bin/*.pt), which can run code when loaded; convert them "
            "to safetensors, or pass --allow-pickle if you trust the source"
        )
    if not safe and not pickled:
        raise CheckpointError(f"{path} has no weights (*.safetensors); save it with save_pretrained()")
    return path


def check_device(device: str, *, option: str = "--device") -> str:
    """Raise CheckpointError unless torch can use `device` here (cpu, cuda, cuda:N, mps)."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise CheckpointError(f"{option} {device!r} is not a torch device; use cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CheckpointError(f"{option} {device}: torch sees no CUDA GPU here; use cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise CheckpointError(f"{option} {device}: only {torch.cuda.device_count()} CUDA device(s) visible; use cuda:0")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise CheckpointError(f"{option} {device}: MPS is not available here; use cpu")
    return device


def load_tokenizer(path: str | Path, *, trust_remote_code: bool = False, padding_side: str = "left"):
    """The checkpoint's tokenizer, left-padded, with a pad token (eos when it has none)."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    except Exception as error:  # transformers raises many types here
        raise CheckpointError(f"cannot load the tokenizer of {path}: {error}; save one with tokenizer.save_pretrained()") from error
    tok.padding_side = padding_side
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def load_pretrained(path: str | Path, auto_class, *, allow_pickle: bool = False, trust_remote_code: bool = False,
                    dtype=None, device: str | None = None, what: str = "model"):
    """(model, tokenizer) from a local directory with `auto_class.from_pretrained`; model in eval mode.

    The one place where weights are loaded: checkpoint and device checked first, safetensors
    only unless `allow_pickle`, remote code only if asked, errors naming the directory.
    """
    path = check_checkpoint_dir(path, allow_pickle=allow_pickle)
    if device is not None:
        check_device(device, option="device")
    tok = load_tokenizer(path, trust_remote_code=trust_remote_code)
    try:
        model = auto_class.from_pretrained(
            str(path),
            use_safetensors=None if allow_pickle else True,
            trust_remote_code=trust_remote_code,
            dtype=dtype,
        )
    except Exception as error:  # transformers raises many types here
        raise CheckpointError(f"cannot load {path} as a {what}: {error}") from error
    if device is not None:
        model.to(device)
    model.eval()
    return model, tok


def load_causal_lm(path: str | Path, *, allow_pickle: bool = False, trust_remote_code: bool = False,
                   dtype=None, device: str | None = None):
    """(model, tokenizer) of a local causal LM; model in eval mode."""
    from transformers import AutoModelForCausalLM

    return load_pretrained(path, AutoModelForCausalLM, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code,
                           dtype=dtype, device=device, what="causal language model")


@contextlib.contextmanager
def quiet_peft():
    """peft reads transformers' deprecated `is_gradient_checkpointing` when it wraps a model,
    which prints a FutureWarning on every run with an adapter; that one warning is silenced."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        yield
