#!/usr/bin/env python3
"""Text ingest: magray vs bare onnxruntime + tokenizers, and peak memory of big inputs.

Usage::

    .venv/bin/python scripts/bench/ingest.py [--passages 300] [--rounds 3]
        [--big-mb 0.5,2] [--files 500] [--query-mb 20] [--skip-big]

Three parts, each printed as a markdown table:

1. **Speed, side by side in one process.** A synthetic document is chunked the
   way ``magray memory add`` chunks it (``iter_passages`` + ``fit_to_window``).
   ``bare`` embeds those passages with ``embed.py``'s ``BareLoop``: an
   ``InferenceSession`` + ``tokenizers`` (padding to each batch's longest,
   batch 32, mean pooling, normalising), the floor. ``magray`` runs the whole
   ingest of the same document into a fresh store: streamed reading, chunking,
   token counting, embedding, SQLite and faiss. Rounds alternate (bare, magray,
   bare, magray, ...) so machine load hits both alike; each side keeps its best
   round. Both use the default model file with the LRU caches off.
2. **Peak RSS of the CLI** (``magray memory add ... --json`` in a subprocess,
   which reports ``peak_rss_mb`` from ``getrusage``): text files of each
   ``--big-mb`` size, a directory of ``--files`` files of 1 KB, and the same
   directory again (everything unchanged). Peak RSS is the kernel's ``VmHWM``
   of the child (``getrusage`` in a child would include this process's peak).
3. **Huge texts through the library** (subprocess): ``search`` with the first
   1000 characters, then with a ``--query-mb`` text, then ``add`` of that text
   as one record; time and peak RSS after each.

Texts are generated deterministically (no network).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

_PROSE = (
    "the memory store keeps passages and their vectors so that a later question finds "
    "them again; embeddings come from a small sentence model running on the cpu, and "
    "every file is read in blocks, split at blank lines and sentence ends, counted in "
    "tokens and written to sqlite before the index learns about it. Ingest should run "
    "at the speed of the model whatever the size of the input"
)
WORDS = _PROSE.split(" ")


def document(chars: int, seed: int = 0) -> str:
    """Paragraphs of 20-120 words, blank-line separated, ``chars`` characters long."""
    rng = random.Random(seed)
    parts: list[str] = []
    size = 0
    while size < chars:
        words = [rng.choice(WORDS) for _ in range(rng.randint(20, 120))]
        para = " ".join(words).capitalize() + ".\n\n"
        parts.append(para)
        size += len(para)
    return "".join(parts)[:chars]


def write_document(path: Path, chars: int, seed: int = 0) -> None:
    """A ``chars``-character document written in 1 MB pieces (never held whole)."""
    with open(path, "w", encoding="utf-8") as handle:
        left = chars
        piece = 0
        while left > 0:
            text = document(min(left, 1_000_000), seed + piece)
            handle.write(text)
            left -= len(text)
            piece += 1


def speed(passages: int, rounds: int) -> dict[str, Any]:
    from magray.ai import Embedder
    from magray.common.settings import MemorySettings
    from magray.memory import Ingest, MemoryStore, fit_to_window, iter_passages
    from magray.memory._ingest import default_chunk_chars

    embedder = Embedder("default", force_cpu=True, cache_entries=0)
    chunk_chars = default_chunk_chars(embedder)
    # a document that chunks into about `passages` passages
    text = document(passages * (chunk_chars - 150), seed=1)
    chunks = [
        p
        for p, _ in fit_to_window(
            iter_passages(text, max_chars=chunk_chars),
            lambda ts: [embedder.count_tokens(t) for t in ts],
            embedder.window,
        )
    ]
    tokens = sum(min(embedder.count_tokens(c), embedder.window) for c in chunks)
    sys.path.insert(0, str(Path(__file__).parent))
    from embed import BareLoop  # the same hand-written loop as the embedding benchmark

    bare = BareLoop(embedder.resolved)
    agree = float(np.sum(bare.embed(chunks[:64]) * embedder.embed(chunks[:64]), axis=1).min())
    settings = MemorySettings(dedupe=False, cache_persist=False)
    best = {"bare": float("inf"), "magray": float("inf")}
    stored = 0
    for _ in range(rounds):
        start = time.perf_counter()
        bare.embed(chunks)
        best["bare"] = min(best["bare"], time.perf_counter() - start)
        with (
            tempfile.TemporaryDirectory() as folder,
            MemoryStore.open(Path(folder) / "s", embedder, settings=settings) as store,
        ):
            start = time.perf_counter()
            Ingest(store).add_text(text, source="bench")
            best["magray"] = min(best["magray"], time.perf_counter() - start)
            stored = store.count()
    return {
        "chunks": len(chunks),
        "stored": stored,
        "tokens": tokens,
        "cosine_min": agree,
        "bare_s": best["bare"],
        "magray_s": best["magray"],
    }


def cli_add(target: Path, home: Path, *extra: str) -> dict[str, Any]:
    script = Path(sys.executable).parent / "magray"
    env = dict(os.environ, MAGRAY_HOME=str(home))
    start = time.perf_counter()
    out = subprocess.run(
        [
            str(script),
            "memory",
            "--store",
            str(home / "store"),
            "add",
            str(target),
            "--json",
            *extra,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"magray memory add failed: {out.stderr}")
    report: dict[str, Any] = json.loads(out.stdout)
    report["wall_s"] = time.perf_counter() - start
    return report


_HUGE_SCRIPT = """
import json, resource, sys, tempfile, time
from pathlib import Path
from magray.memory import MemoryStore
sys.path.insert(0, sys.argv[2])
from ingest import document
size = int(sys.argv[1])
def rss():  # VmHWM: getrusage would include the parent's peak (kept across fork + exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
out = {}
with tempfile.TemporaryDirectory() as folder:
    with MemoryStore.open(Path(folder) / "s", "default") as store:
        store.add([document(800, seed=i) for i in range(50)])
        store.search("warm up")
        huge = document(size, seed=99)
        out["rss_ready_mb"] = rss()
        for name, call in (("search_window", lambda: store.search(huge[:1000])),
                           ("search_huge", lambda: store.search(huge)),
                           ("add_huge", lambda: store.add([huge]))):
            t = time.perf_counter()
            call()
            out[name + "_s"] = time.perf_counter() - t
            out["rss_" + name + "_mb"] = rss()
print(json.dumps(out))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--big-mb", default="0.5,2", help="sizes of the single text file, comma separated"
    )
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--query-mb", type=float, default=20.0)
    parser.add_argument("--skip-big", action="store_true", help="only the speed comparison")
    parser.add_argument("--skip-speed", action="store_true", help="only the memory runs")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, {time.strftime('%Y-%m-%d')}")

    if not args.skip_speed:
        s = speed(args.passages, args.rounds)
        ratio = s["magray_s"] / s["bare_s"]
        print(
            f"\n{s['chunks']} passages ({s['stored']} stored), {s['tokens']:,} tokens, "
            f"cosine min {s['cosine_min']:.6f}, best of {args.rounds} interleaved rounds\n"
        )
        print("| run | seconds | chunks/s | tokens/s | vs bare |")
        print("|---|---:|---:|---:|---:|")
        for name, key in (
            ("bare onnxruntime + tokenizers", "bare_s"),
            ("magray ingest", "magray_s"),
        ):
            sec = s[key]
            print(
                f"| {name} | {sec:.2f} | {s['chunks'] / sec:.1f} | {s['tokens'] / sec:,.0f} | "
                f"{sec / s['bare_s']:.2f}x |"
            )
        print(f"\nratio magray / bare: {ratio:.3f}")
        sys.stdout.flush()
    if args.skip_big:
        return 0

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        rows = []
        for size in [float(x) for x in args.big_mb.split(",") if x]:
            big = root / f"big-{size:g}.txt"
            write_document(big, int(size * 1_000_000), seed=5)
            rows.append((f"one {size:g} MB text file", cli_add(big, root / f"home-{size:g}")))
        if args.files:
            tree = root / "tree"
            for i in range(args.files):
                sub = tree / f"d{i % 20:02}"
                sub.mkdir(parents=True, exist_ok=True)
                (sub / f"f{i:05}.md").write_text(document(1000, seed=1000 + i))
            rows.append((f"{args.files} files of 1 KB", cli_add(tree, root / "home-tree")))
            again = cli_add(tree, root / "home-tree")
            rows.append(("the same files again (all unchanged)", again))
        print("\n| `magray memory add` | records | seconds | chunks/s | tokens/s | peak RSS MB |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, r in rows:
            print(
                f"| {name} | {r['records_added']:,} | {r['wall_s']:.1f} | {r['chunks_per_s']:.1f} "
                f"| {r['tokens_per_s']:,.0f} | {r['peak_rss_mb']:.0f} |"
            )
        sys.stdout.flush()
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            _HUGE_SCRIPT,
            str(int(args.query_mb * 1_000_000)),
            str(Path(__file__).parent),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    q = json.loads(out.stdout)
    mb = f"{args.query_mb:g} MB"
    print(f"\n| library call ({mb} text) | seconds | peak RSS MB after |")
    print("|---|---:|---:|")
    print(f"| store ready (50 records, model loaded, text built) | - | {q['rss_ready_mb']:.0f} |")
    print(
        f"| search(first 1000 chars) | {q['search_window_s']:.3f} "
        f"| {q['rss_search_window_mb']:.0f} |"
    )
    print(f"| search({mb} text) | {q['search_huge_s']:.3f} | {q['rss_search_huge_mb']:.0f} |")
    print(f"| add([{mb} text]), one record | {q['add_huge_s']:.3f} | {q['rss_add_huge_mb']:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
