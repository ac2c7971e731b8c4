"""One atomic writer for every output directory (reports, lab results, worlds, trained models).

Outputs are built in a temporary directory beside the target and moved into place only when
complete, so a failed or killed command never leaves a half-written output:

- `merge`: each built file replaces its namesake in the target (other files there stay);
- `replace`: the whole target is replaced; the old one stays in place until the new one is
  complete, is then renamed aside, the new one renamed in, and the old one deleted;
- `new`: the target must not exist (or be an empty directory).

Temporary directories are named `.<target>.<pid>-<random>.tmp`. A process killed with
SIGKILL cannot delete its own, so every writer first removes the ones whose process is gone
(`sweep`): nothing lingers past the next run. A kill between the two renames of `replace`
leaves the old output aside; `sweep` puts it back.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from arena.errors import InputError

_OLD = "old"  # the random part of a `replace`'s renamed-aside old output


def _pattern(name: str) -> re.Pattern:
    return re.compile(r"^\." + re.escape(name) + r"\.(?:(\d+)-)?([A-Za-z0-9_]+)\.tmp$")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def sweep(target: str | Path) -> list[Path]:
    """Remove the temporary directories of dead writers of `target`; restore an old output that a
    kill left renamed aside. Returns what was removed. Never touches a live writer's."""
    target = Path(target).absolute()
    parent = target.parent
    if not parent.is_dir():
        return []
    pattern = _pattern(target.name)
    removed = []
    for entry in parent.iterdir():
        match = pattern.match(entry.name)
        if match is None or not entry.is_dir():
            continue
        pid = int(match.group(1)) if match.group(1) else None  # no pid: written by an older version
        if pid is not None and _alive(pid):
            continue
        if match.group(2) == _OLD and not target.exists():
            os.replace(entry, target)  # killed between the two renames: the old output comes back
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


def temp_dir_for(target: str | Path) -> Path:
    """A fresh temporary directory beside `target`, named so that `sweep` can find it."""
    target = Path(target).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}-", suffix=".tmp", dir=target.parent))


def replace_dir(built: str | Path, target: str | Path) -> None:
    """Move the complete directory `built` onto `target`; an existing target stays until then."""
    built, target = Path(built), Path(target).absolute()
    os.chmod(built, 0o755)  # mkdtemp makes it 0700; an output directory is ordinary
    if not target.exists():
        os.replace(built, target)
        return
    aside = target.with_name(f".{target.name}.{os.getpid()}-{_OLD}.tmp")
    if aside.exists():
        shutil.rmtree(aside)
    os.replace(target, aside)
    try:
        os.replace(built, target)
    except BaseException:
        os.replace(aside, target)
        raise
    shutil.rmtree(aside, ignore_errors=True)


@contextlib.contextmanager
def atomic_output(target: str | Path, *, mode: str = "merge") -> Iterator[Path]:
    """Yield a temporary directory to build the output in; on success move it onto `target`.

    On any error (or a kill) the target is unchanged and the temporary directory is removed
    (now, or by the next writer's `sweep`).
    """
    if mode not in ("merge", "replace", "new"):
        raise ValueError(f"mode must be merge, replace or new; got {mode!r}")
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise InputError(f"{target} is a file; give a directory path for the output")
    if mode == "new" and target.exists() and any(target.iterdir()):
        raise InputError(f"{target} already exists and is not empty; pass a new directory")
    sweep(target)
    tmp = temp_dir_for(target)
    try:
        yield tmp
        if mode == "merge" and target.exists():
            for item in sorted(tmp.iterdir()):
                dest = target / item.name
                if item.is_dir() and dest.is_dir():
                    shutil.rmtree(dest)
                os.replace(item, dest)
        else:
            if mode == "new" and target.exists():
                target.rmdir()  # empty, checked above
            replace_dir(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
