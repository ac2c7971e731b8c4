"""Benchmark: fingerprinting a 1 GB checkpoint, without and with the run store's cache.

A checkpoint directory with one 1 GiB `model.safetensors` (random bytes) and a config is
fingerprinted three ways, side by side in one invocation:

1. before: `fingerprint_path(path)`, SHA-256 of every byte (what every run did);
2. first run with the cache: a miss (hash, then the entry goes into the run store);
3. rerun: a fresh `FingerprintCache` read from the run store (as the next `arena tournament`
   does), a hit: one `stat` per file.

The file is read from the page cache after it is written (the most favourable case for the
"before" column; a cold read from disk is slower still).

    .venv/bin/python benchmarks/bench_fingerprint.py [--gib 1]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from arena.fingerprint import RACY_SECONDS, FingerprintCache, fingerprint_path
    from arena.store import Store

    root = Path(tempfile.mkdtemp(prefix="bench-fingerprint-"))
    try:
        ckpt = root / "ckpt"
        ckpt.mkdir()
        (ckpt / "config.json").write_text('{"model_type": "gpt2"}')
        size = int(args.gib * (1 << 30))
        with (ckpt / "model.safetensors").open("wb") as fh:
            block = os.urandom(1 << 24)
            for _ in range(size // len(block)):
                fh.write(block)
        time.sleep(RACY_SECONDS + 0.5)  # a checkpoint that has been left alone (see arena.fingerprint)

        def timed(fn):
            best = float("inf")
            for _ in range(args.repeat):
                t = time.perf_counter()
                value = fn()
                best = min(best, time.perf_counter() - t)
            return best, value

        t_before, fp = timed(lambda: fingerprint_path(ckpt))

        def first_run():
            cache = FingerprintCache()
            value = fingerprint_path(ckpt, cache=cache)
            shutil.rmtree(root / "run", ignore_errors=True)
            with Store.open(root / "run") as store:
                store.put_fingerprints(cache.fresh)
            return value

        t_miss, fp_miss = timed(first_run)

        def rerun():
            with Store.open(root / "run") as store:
                cache = FingerprintCache(known=store.fingerprints())
            value = fingerprint_path(ckpt, cache=cache)
            assert cache.hits == 1 and cache.misses == 0
            return value

        t_hit, fp_hit = timed(rerun)
        assert fp == fp_miss == fp_hit
        gib = size / (1 << 30)
        print(f"checkpoint: {gib:.2f} GiB, fingerprint {fp}; best of {args.repeat}")
        print(f"{'before: hash every byte':<40} {t_before * 1e3:10.1f} ms")
        print(f"{'first run with cache (miss, store it)':<40} {t_miss * 1e3:10.1f} ms")
        print(f"{'rerun with cache (hit, read the store)':<40} {t_hit * 1e3:10.1f} ms")
        print(f"speed-up on a rerun: {t_before / t_hit:.0f}x")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
