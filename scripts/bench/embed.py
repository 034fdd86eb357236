#!/usr/bin/env python3
"""Embedding speed: magray's embedder vs a bare onnxruntime loop, int8 variants, warm cache.

Usage::

    .venv/bin/python scripts/bench/embed.py [--sentences 1000] [--single 1000] [--repeats 3]

All rows run in one process on the same deterministic sentences (built from the
labelled set's passages, 3 to 120 words, so lengths vary as in real use):

- single-sentence latency p50/p99 (``embed([s])`` one at a time, cache off);
- throughput at batch 32 over all sentences (best of ``--repeats``, cache off);
- ``bare ort``: an InferenceSession + tokenizers with naive padding (input order,
  every batch padded to its longest member): the floor magray must match or beat;
- ``q8``: the INT8 variant made by ``magray models quantize`` (temporary registry);
- ``cache warm``: the same texts again with the LRU cache holding all of them.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def sentences(count: int) -> list[str]:
    from magray.ai._eval import load_eval_set

    words = " ".join(load_eval_set().docs).split()
    rng = random.Random(0)
    out = []
    for _ in range(count):
        length = int(min(120, max(3, rng.lognormvariate(2.8, 0.7))))
        start = rng.randrange(0, len(words) - length)
        out.append(" ".join(words[start : start + length]))
    return out


class BareLoop:
    """What a hand-written loop does: tokenizer padding to the batch's longest, input order."""

    def __init__(self, resolved: Any) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.card = resolved.card
        self.session = ort.InferenceSession(
            str(resolved.model_path), providers=["CPUExecutionProvider"]
        )
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.tokenizer = Tokenizer.from_file(str(resolved.tokenizer_path))
        self.tokenizer.enable_truncation(max_length=self.card.max_tokens)
        self.tokenizer.enable_padding()
        self.output = self.card.output

    def embed(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        parts = []
        for start in range(0, len(texts), batch_size):
            encodings = self.tokenizer.encode_batch(texts[start : start + batch_size])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            names = [self.output] if isinstance(self.output, str) else None
            out = self.session.run(names, {k: v for k, v in feeds.items() if k in self.inputs})
            hidden = out[0] if isinstance(self.output, str) else out[self.output]
            if hidden.ndim == 3:  # mean pooling
                m = mask[:, :, None].astype(np.float32)
                hidden = (hidden * m).sum(1) / m.sum(1)
            parts.append(hidden / np.linalg.norm(hidden, axis=1, keepdims=True))
        return np.vstack(parts)


def measure_all(
    variants: dict[str, Any], texts: list[str], single: int, repeats: int
) -> dict[str, dict[str, float]]:
    """Interleaved timing: every variant sees the same machine load.

    Single-sentence latency alternates variants sentence by sentence (rotating the
    order); throughput runs each variant once per round and keeps its best round.
    """
    names = list(variants)
    for embed in variants.values():
        embed(texts[:32])  # warm-up: session, arena, allocator
    latencies: dict[str, list[float]] = {n: [] for n in names}
    for i, text in enumerate(texts[:single]):
        order = names[i % len(names) :] + names[: i % len(names)]
        for name in order:
            start = time.perf_counter()
            variants[name]([text])
            latencies[name].append((time.perf_counter() - start) * 1000)
    best = dict.fromkeys(names, float("inf"))
    for _ in range(repeats):
        for name in names:
            start = time.perf_counter()
            variants[name](texts)
            best[name] = min(best[name], time.perf_counter() - start)
    result = {}
    for name in names:
        q = statistics.quantiles(latencies[name], n=100)
        result[name] = {
            "p50_ms": statistics.median(latencies[name]),
            "p99_ms": q[98],
            "per_s": len(texts) / best[name],
        }
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--single", type=int, default=1000, help="sentences timed one by one")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default="minilm-l3,minilm-l6")
    parser.add_argument(
        "--models-dir", default=None, help="registry folder (default: a fresh temporary one)"
    )
    args = parser.parse_args()

    from magray.ai import Embedder, ModelRegistry
    from magray.ai._quantize import quantize_model

    texts = sentences(args.sentences)
    folder = args.models_dir or tempfile.mkdtemp(prefix="magray-bench-")
    registry = ModelRegistry(models_dir=Path(folder))
    rows = []
    for name in [n for n in args.models.split(",") if n]:
        resolved = registry.resolve(name)
        magray = Embedder(name, registry=registry, force_cpu=True, cache_entries=0)
        bare = BareLoop(resolved)
        agree = float(np.sum(magray.embed(texts[:200]) * bare.embed(texts[:200]), axis=1).min())
        print(f"{name}: magray vs bare loop min cosine {agree:.6f}", file=sys.stderr)
        variants: dict[str, Any] = {"magray": magray.embed, "bare ort": bare.embed}
        if resolved.card.variant != "int8":
            q8_name = f"{name}-q8"
            variant = (
                registry.card(q8_name)
                if q8_name in registry.names()
                else quantize_model(registry, name)
            )
            q8 = Embedder(variant.name, registry=registry, force_cpu=True, cache_entries=0)
            cos = np.sum(q8.embed(texts) * magray.embed(texts), axis=1)
            print(
                f"{variant.name}: cosine vs fp32 on {len(texts)} sentences: "
                f"mean {cos.mean():.4f} min {cos.min():.4f}",
                file=sys.stderr,
            )
            variants["magray q8"] = q8.embed
        warm = Embedder(name, registry=registry, force_cpu=True, cache_entries=len(texts) * 2)
        warm.embed(texts)
        variants["magray cache warm"] = warm.embed
        measured = measure_all(variants, texts, args.single, args.repeats)
        rows += [(name, variant_name, m) for variant_name, m in measured.items()]

    print(
        f"| model | variant | p50 ms (1 sentence) | p99 ms | sentences/s (batch 32, {len(texts)}) |"
    )
    print("|---|---|---:|---:|---:|")
    for name, variant, m in rows:
        print(f"| {name} | {variant} | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} | {m['per_s']:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
