"""Prompt sets for tournaments: JSONL, CSV, plain text, a local `datasets` directory, or built in.

A prompt is keyed by the hash of its text (`Prompt.hash`), so the store reuses a
generation for the same text wherever it comes from, and an edited prompt is new work.
Prompt ids (`Prompt.id`) are the user's labels (or the line number) and only name things.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from arena.errors import InputError
from arena.fingerprint import fingerprint_obj
from arena.records_io import JsonLineError, read_json_values, read_rows

TEXT_FIELDS = ("prompt", "text", "question", "instruction", "input")
ID_FIELDS = ("id", "prompt_id", "question_id")

DEFAULT_PROMPTS = (
    "What is 3+4?",
    "Name a primary colour.",
    "Write one sentence about the sea.",
    "What is the capital of France?",
    "Give a synonym for happy.",
    "Complete: The quick brown fox",
    "How many legs does a spider have?",
    "Say hello in Spanish.",
    "What comes after Monday?",
    "Write a haiku about rain.",
    "Is 17 a prime number?",
    "Describe a cat in three words.",
    "What is 9 times 6?",
    "Suggest a name for a dog.",
    "Why is the sky blue?",
    "Translate 'thank you' into French.",
)
"""A small general-purpose set used when no `--prompts` file is given."""


@dataclass(frozen=True)
class Prompt:
    id: str
    """The user's label for the prompt (or its 1-based line/row number)."""
    text: str
    """The prompt shown to every checkpoint."""

    @property
    def hash(self) -> str:
        """Content key of the prompt text (16 hex), used by the store."""
        return fingerprint_obj({"prompt": self.text})


def default_prompts() -> list[Prompt]:
    """The built-in prompt set."""
    return [Prompt(id=str(i + 1), text=t) for i, t in enumerate(DEFAULT_PROMPTS)]


def load_prompts(path: str | Path | None = None, *, limit: int | None = None) -> list[Prompt]:
    """Prompts from `path` (format by suffix; a directory is read as a `datasets` dataset).

    JSONL/JSON: one object per line with a `prompt` (or `text`, `question`, `instruction`,
    `input`) field and an optional `id`; CSV with such a column; any other file: one prompt
    per non-empty line. `None` gives the built-in set. Duplicated texts are kept once (first
    occurrence) so that no pair is judged twice on the same prompt by accident.
    """
    if path is None:
        prompts = default_prompts()
    else:
        path = Path(path)
        if not path.exists():
            raise InputError(f"prompt file {path} does not exist; pass --prompts with a JSONL/CSV/text file")
        try:
            if path.is_dir():
                prompts = _from_dataset_dir(path)
            elif path.suffix.lower() in (".jsonl", ".json"):
                prompts = _from_jsonl(path)
            elif path.suffix.lower() == ".csv":
                prompts = _from_csv(path)
            else:
                prompts = _from_text(path)
        except UnicodeDecodeError as error:
            raise InputError(f"prompt file {path} is not UTF-8 text ({error.reason}); re-save it as UTF-8") from None
        if not prompts:
            raise InputError(f"{path} holds no prompts; put one prompt per line (or a 'prompt' field per JSONL row)")
    seen: set[str] = set()
    unique = []
    for p in prompts:
        if p.text not in seen:
            seen.add(p.text)
            unique.append(p)
    if limit is not None:
        unique = unique[:limit]
    return unique


def _pick(row: dict, fields: tuple[str, ...]):
    for f in fields:
        if f in row and row[f] is not None and str(row[f]) != "":
            return row[f]
    return None


def _from_jsonl(path: Path) -> list[Prompt]:
    try:
        values = read_json_values(path)
    except JsonLineError as error:  # prompt files name places as path:line, as below
        raise InputError(
            f"{path}:{error.line} is not valid JSON ({error.reason}); write one JSON object per line"
        ) from None
    prompts = []
    for v in values:  # a row is an object with a prompt field, or the prompt as a JSON string
        if isinstance(v.value, str):
            text, pid = v.value, None
        elif isinstance(v.value, dict):
            text, pid = _pick(v.value, TEXT_FIELDS), _pick(v.value, ID_FIELDS)
        else:
            text, pid = None, None
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"{path}:{v.number} has no prompt text; give each row a non-empty 'prompt' field")
        prompts.append(Prompt(id=str(pid if pid is not None else v.number), text=text))
    return prompts


def _from_csv(path: Path) -> list[Prompt]:
    rows = read_rows(path, what="prompt")
    if not rows:
        raise InputError(
            f"{path} is empty (no header or no rows); give a header row with a 'prompt' column and one prompt per row"
        )
    column = next((f for f in TEXT_FIELDS if f in rows[0]), None)
    if column is None:
        raise InputError(f"{path} has no prompt column (looked for {', '.join(TEXT_FIELDS)}); add a 'prompt' header")
    id_column = next((f for f in ID_FIELDS if f in rows[0]), None)
    return [Prompt(id=row[id_column] if id_column and row[id_column] else str(n), text=row[column])
            for n, row in enumerate(rows, start=1) if row[column].strip()]


def _from_text(path: Path) -> list[Prompt]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [Prompt(id=str(n), text=line) for n, line in enumerate(lines, start=1) if line.strip()]


def _from_dataset_dir(path: Path) -> list[Prompt]:
    from arena.errors import require

    datasets = require("datasets", "datasets")
    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as error:
        raise InputError(f"{path} is not a dataset saved with save_to_disk ({error}); pass a JSONL/CSV/text file") from error
    if isinstance(ds, datasets.DatasetDict):
        split = "test" if "test" in ds else sorted(ds)[0]
        ds = ds[split]
    column = next((f for f in TEXT_FIELDS if f in ds.column_names), None)
    if column is None:
        raise InputError(f"dataset {path} has no prompt column (looked for {', '.join(TEXT_FIELDS)}); rename one to 'prompt'")
    id_column = next((f for f in ID_FIELDS if f in ds.column_names), None)
    prompts = []
    for n, row in enumerate(ds, start=1):
        text = row[column]
        if isinstance(text, str) and text.strip():
            prompts.append(Prompt(id=str(row[id_column]) if id_column else str(n), text=text))
    return prompts
