#!/usr/bin/env python3
"""Measure the local llama.cpp provider: start-up, latency and generation speed.

Usage::

    .venv/bin/python scripts/bench/llm_local.py             # 1 thread (the default setting)
    .venv/bin/python scripts/bench/llm_local.py --threads 2

Needs ``pip install "magray-llm[local]"``. Runs entirely on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time

PROMPTS = [
    "What is the capital of France?",
    "Name three primary colours.",
    "Write one sentence about the sea.",
    "What is 12 times 12?",
    "Say hello in Spanish.",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from magray.common.log import configure_logging

    configure_logging(level="WARNING", fmt="console")
    from magray.common.metrics import MetricsRegistry
    from magray.common.settings import LLMSettings
    from magray.llm import LLMClient

    settings = LLMSettings(model="local/gemma3-270m", local_threads=args.threads)
    client = LLMClient(settings=settings, metrics=MetricsRegistry())
    started = time.perf_counter()
    client.complete("Hi", max_tokens=1, temperature=0)  # starts the server (and imports litellm)
    first_call_s = time.perf_counter() - started
    rows = []
    try:
        for prompt in PROMPTS:
            reply = client.complete(prompt, max_tokens=args.max_tokens, temperature=0)
            rows.append(
                {
                    "prompt": prompt,
                    "ms": round(reply.latency_ms, 1),
                    "completion_tokens": reply.usage.completion_tokens,
                    "tok_per_s": round(
                        reply.usage.completion_tokens / (reply.latency_ms / 1000), 1
                    ),
                    "reply": (reply.text or "").strip()[:80],
                }
            )
    finally:
        client.close()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "threads": args.threads,
        "load_average": os.getloadavg()[0],
        "first_call_s": round(first_call_s, 2),
        "median_ms": statistics.median(r["ms"] for r in rows),
        "median_tok_per_s": statistics.median(r["tok_per_s"] for r in rows),
        "max_rss_mb": round(rss_mb),
        "calls": rows,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"threads {args.threads}  load {result['load_average']:.1f}  first call (start-up) "
        f"{result['first_call_s']} s  median {result['median_ms']} ms  "
        f"median {result['median_tok_per_s']} tok/s  max RSS {result['max_rss_mb']} MB"
    )
    for row in rows:
        tokens = row["completion_tokens"]
        print(f"  {row['ms']:>7} ms {tokens:>3} tok  {row['prompt']!r} -> {row['reply']!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
