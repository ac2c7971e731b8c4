"""`arena convert PATH.gguf OUT_DIR`: a GGUF file as a safetensors checkpoint with its tokenizer.

Thin layer over `arena.convert.convert_gguf` (needs the `gguf` extra).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from arena.cli._app import app, err, out


@app.command("convert")
def convert(
    gguf: Path = typer.Argument(..., help="The .gguf file (quantised weights are dequantised once)."),
    out_dir: Path = typer.Argument(..., help="New checkpoint directory (must not exist)."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
) -> None:
    """Convert a GGUF file into a Hugging Face safetensors checkpoint directory (tokenizer included)."""
    from arena.convert import check_gguf_file, convert_gguf
    from arena.fingerprint import fingerprint_path

    check_gguf_file(gguf)
    err.print(f"converting {gguf} (dequantising every tensor; a minute for a small model)", markup=False)
    path = convert_gguf(gguf, out_dir, card={"converted_from": gguf.name, "gguf_fingerprint": fingerprint_path(gguf)})
    files = sorted(p.name for p in path.iterdir())
    if json_out:
        print(json.dumps({"out": str(path), "files": files}))
    else:
        out.print(f"wrote {path} ({', '.join(files)})", markup=False)
