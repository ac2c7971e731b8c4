"""The fingerprint cache: an unchanged path is not read again; any change is hashed again and
the cache never returns the fingerprint of older bytes."""

import os
import time

import pytest

import arena.fingerprint as F
from arena.fingerprint import FingerprintCache, fingerprint_path
from arena.store import Store


@pytest.fixture
def no_racy_window(monkeypatch):
    """Cache files written a moment ago (the tests' files are all fresh)."""
    monkeypatch.setattr(F, "RACY_SECONDS", -1.0)


def _no_hashing(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("hashed a path the cache should have answered")

    monkeypatch.setattr(F, "_hash_files", refuse)


def _ckpt(path, weights=b"\x01" * 1000):
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text('{"a": 1}')
    (path / "model.safetensors").write_bytes(weights)
    return path


def test_unchanged_directory_is_not_hashed_again(tmp_path, monkeypatch, no_racy_window):
    d = _ckpt(tmp_path / "m")
    cache = FingerprintCache()
    fp = fingerprint_path(d, cache=cache)
    assert fp == fingerprint_path(d) and cache.misses == 1 and len(cache.fresh) == 1
    _no_hashing(monkeypatch)
    assert fingerprint_path(d, cache=cache) == fp
    # Through the store: a new run reads the cache another run wrote.
    with Store.open(tmp_path / "run") as store:
        store.put_fingerprints(cache.fresh)
    again = FingerprintCache(known=Store.open_readonly(tmp_path / "run").fingerprints())
    assert fingerprint_path(d, cache=again) == fp and again.hits == 1 and again.misses == 0


def _modifications(d):
    """Changes that must each change the fingerprint; each returns after modifying d."""
    w = d / "model.safetensors"

    def same_size_new_mtime():
        w.write_bytes(b"\x02" * 1000)

    def same_size_mtime_restored():  # what `cp -p` or `rsync -t` can do
        st = w.stat()
        time.sleep(0.02)  # a timestamp tick: the kernel's ctime clock is coarse (jiffies)
        w.write_bytes(b"\x03" * 1000)
        os.utime(w, ns=(st.st_atime_ns, st.st_mtime_ns))

    def grown():
        with w.open("ab") as fh:
            fh.write(b"\x00")

    def file_added():
        (d / "tokenizer.json").write_text("{}")

    def file_removed():
        (d / "tokenizer.json").unlink()

    def file_renamed():
        (d / "config.json").rename(d / "config2.json")

    def replaced_by_copy():  # a new inode with the same size and mtime as the old file
        st = w.stat()
        tmp = d / "new.tmp"
        tmp.write_bytes(b"\x04" * st.st_size)
        os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.replace(tmp, w)

    return [same_size_new_mtime, same_size_mtime_restored, grown, file_added, file_removed,
            file_renamed, replaced_by_copy]


def test_a_stale_cache_never_gives_the_old_fingerprint(tmp_path, no_racy_window):
    d = _ckpt(tmp_path / "m")
    cache = FingerprintCache()
    before = fingerprint_path(d, cache=cache)
    for modify in _modifications(d):
        modify()
        # The cached answer is the fingerprint of the bytes on disk now, not the one before.
        fp = fingerprint_path(d, cache=cache)
        assert fp == fingerprint_path(d), modify.__name__
        assert fp != before, modify.__name__
        before = fp
        # ...and is cached in its turn (the next call is a hit).
        hits = cache.hits
        assert fingerprint_path(d, cache=cache) == fp and cache.hits == hits + 1


def test_single_file_checkpoint_rehashed_when_changed(tmp_path, no_racy_window):
    f = tmp_path / "m.gguf"
    f.write_bytes(b"GGUF" + b"\x00" * 100)
    cache = FingerprintCache()
    fp = fingerprint_path(f, cache=cache)
    f.write_bytes(b"GGUF" + b"\x01" * 100)
    assert fingerprint_path(f, cache=cache) == fingerprint_path(f) != fp


def test_recently_modified_files_are_not_cached(tmp_path):
    # Within the racy window a second write could keep the same mtime tick: hash, don't cache.
    d = _ckpt(tmp_path / "m")
    cache = FingerprintCache()
    fingerprint_path(d, cache=cache)
    assert cache.fresh == {}
    old = time.time() - 60
    for f in d.iterdir():
        os.utime(f, (old, old))
    # ctime is now (utime sets it), so still not cached: only a path left alone for a while is.
    fingerprint_path(d, cache=cache)
    assert cache.fresh == {}


def test_old_store_without_the_table_reads_as_empty(tmp_path):
    import sqlite3

    run = tmp_path / "run"
    with Store.open(run) as store:
        store.conn.execute("DROP TABLE fingerprints")
        store.conn.execute("DROP TABLE analyses")
    ro = Store.open_readonly(run)
    assert ro.fingerprints() == {} and ro.analysis("x") is None
    ro.close()
    with Store.open(run) as store:  # opening for writing adds the tables
        assert store.fingerprints() == {}
        assert sqlite3.connect(run / "arena.sqlite").execute("SELECT count(*) FROM analyses").fetchone() == (0,)


def test_run_records_are_not_part_of_the_key_and_model_files_are(tmp_path, no_racy_window):
    """A model's key covers what it generates with (weights, configs, tokenizer, templates), not
    the records of the run that made it: cards, metrics, tracker logs, intermediate checkpoints."""
    a, b = _ckpt(tmp_path / "a"), _ckpt(tmp_path / "b")
    (a / "arena_card.json").write_text('{"created": "2026-01-01T00:00:00+00:00", "out": "/x/a"}')
    (a / "metrics.jsonl").write_text('{"step": 1, "seconds": 0.1}\n')
    (a / "README.md").write_text("# card, edited later\n")
    (a / "judgments.sqlite").write_bytes(b"SQLite format 3\x00")       # what a --judge-cache run bought
    (a / "train_results.json").write_text('{"train_runtime": 12.5}')    # HF Trainer's save_metrics
    _ckpt(a / "checkpoint-5", weights=b"\x05" * 1000)
    (a / "runs" / "nash-mp").mkdir(parents=True)
    (a / "runs" / "nash-mp" / "events.out.tfevents.1").write_bytes(b"\x00\x01")
    assert fingerprint_path(a) == fingerprint_path(b)
    cache = FingerprintCache()
    fp = fingerprint_path(a, cache=cache)
    (a / "checkpoint-5" / "model.safetensors").unlink()              # pruning a checkpoint-N keeps the key
    (a / "metrics.jsonl").write_text("")
    assert fingerprint_path(a, cache=cache) == fp == fingerprint_path(b)
    for name, text in (("chat_template.jinja", "{{ x }}"), ("generation_config.json", "{}"),
                       ("tokenizer.json", "{}")):
        c = _ckpt(tmp_path / name)
        (c / name).write_text(text)
        assert fingerprint_path(c) != fingerprint_path(b), name
    nested = _ckpt(tmp_path / "nested")
    (nested / "sub").mkdir()
    (nested / "sub" / "README.md").write_text("only the top level's records are skipped")
    assert fingerprint_path(nested) != fingerprint_path(b)
