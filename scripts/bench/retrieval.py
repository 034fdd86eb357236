#!/usr/bin/env python3
"""Retrieval quality on magray-ai's labelled set: every embedding model x every ranking variant.

Usage::

    .venv/bin/python scripts/bench/retrieval.py [--models a,b] [--json out.json]

For each embedding model in the registry (built-in and user models), it
embeds the 150 passages and 77 questions of ``magray/ai/data/eval`` and
scores: dense cosine ranking, BM25 alone, reciprocal-rank fusion (equal and
dense-weighted), min-max score fusion at several weights, and - when a
cross-encoder is registered - dense top-20 re-ranked by it. Prints a Markdown
table (recall@1/5/10, MRR@10, and each variant's MRR difference to dense ranking
with a paired-bootstrap 95 % interval: a variant counts as better only when the
whole interval is above zero) for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="", help="comma-separated names (default: all embed)")
    parser.add_argument("--json", dest="json_path", default=None, help="also write results here")
    args = parser.parse_args()

    from magray.ai import Embedder, ModelRegistry
    from magray.ai._eval import evaluate_variants, load_eval_set
    from magray.ai._reranker import Reranker
    from magray.common.errors import MagrayError

    registry = ModelRegistry()
    names = [n for n in args.models.split(",") if n] or registry.names(task="embed")
    eval_set = load_eval_set()
    rerank = None
    rerankers = registry.names(task="rerank")
    if rerankers:
        rerank = Reranker(rerankers[0], registry=registry, force_cpu=True).rerank
    print(
        f"labelled set: {len(eval_set.docs)} passages, {len(eval_set.questions)} questions; "
        f"cross-encoder: {rerankers[0] if rerankers else 'none registered'}",
        file=sys.stderr,
    )
    results = {}
    for name in names:
        try:
            embedder = Embedder(name, registry=registry, force_cpu=True, cache_entries=0)
        except MagrayError as exc:
            print(f"skip {name}: {exc.message}", file=sys.stderr)
            continue
        start = time.perf_counter()
        docs = embedder.embed(eval_set.docs)
        questions = embedder.embed(eval_set.questions)
        seconds = time.perf_counter() - start
        results[name] = evaluate_variants(eval_set, questions @ docs.T, rerank=rerank)
        print(f"{name}: embedded the set in {seconds:.2f} s", file=sys.stderr)

    print(
        "| model | ranking | recall@1 | recall@5 | recall@10 | MRR@10 | ΔMRR vs dense [95 % CI] |"
    )
    print("|---|---|---:|---:|---:|---:|---|")
    for name, variants in results.items():
        for variant, m in variants.items():
            low, high = m["mrr_delta_ci95"]
            delta = (
                "—"
                if variant == "dense"
                else f"{m['mrr_delta_vs_dense']:+.3f} [{low:+.3f}, {high:+.3f}]"
            )
            print(
                f"| {name} | {variant} | {m['recall@1']:.1%} | {m['recall@5']:.1%} "
                f"| {m['recall@10']:.1%} | {m['mrr@10']:.3f} | {delta} |"
            )
    if args.json_path:
        with open(args.json_path, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
