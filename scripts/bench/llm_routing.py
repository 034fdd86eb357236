#!/usr/bin/env python3
"""Measure what litellm's Router costs per call compared with calling one model directly.

Usage::

    .venv/bin/python scripts/bench/llm_routing.py              # 200 calls per configuration
    .venv/bin/python scripts/bench/llm_routing.py --calls 500 --json

Every call goes to loopback OpenAI-compatible servers on 127.0.0.1 (magray.llm.testing) that
answer at once, so the figures are client-side overhead: litellm, the Router, magray's bookkeeping.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from magray.common.log import configure_logging

    configure_logging(level="WARNING", fmt="console")
    from magray.common.metrics import MetricsRegistry
    from magray.common.settings import LLMSettings
    from magray.llm import LLMClient, warm_up
    from magray.llm.testing import LoopbackLLM

    warm_up()
    results: dict[str, Any] = {"calls": args.calls}
    with LoopbackLLM() as a, LoopbackLLM() as b:

        def deployments(strategy: str) -> LLMSettings:
            return LLMSettings.model_validate(
                {
                    "model": "fast",
                    "routing_strategy": strategy,
                    "deployments": [
                        {
                            "name": "fast",
                            "model": "openai/m",
                            "api_base": srv.api_base,
                            "api_key": "k",
                        }
                        for srv in (a, b)
                    ],
                }
            )

        configs = {
            "direct (one model, no Router)": LLMSettings.model_validate(
                {"model": "openai/m", "api_base": a.api_base, "api_key": "k"}
            ),
            "Router simple-shuffle (2 deployments)": deployments("simple-shuffle"),
            "Router latency-based (2 deployments)": deployments("latency-based-routing"),
            "Router cost-based (2 deployments)": deployments("cost-based-routing"),
        }
        for name, settings in configs.items():
            client = LLMClient(settings=settings, metrics=MetricsRegistry())
            t0 = time.perf_counter()
            client.complete("warm up")  # the first call builds the Router
            first_ms = (time.perf_counter() - t0) * 1000
            sync_ms: list[float] = []
            for _ in range(args.calls):
                t0 = time.perf_counter()
                client.complete("hi")
                sync_ms.append((time.perf_counter() - t0) * 1000)

            async def run(c: LLMClient = client) -> list[float]:
                out = []
                for _ in range(args.calls):
                    t0 = time.perf_counter()
                    await c.acomplete("hi")
                    out.append((time.perf_counter() - t0) * 1000)
                from magray.llm.testing import aclose_litellm_clients

                await aclose_litellm_clients()
                return out

            async_ms = asyncio.run(run())
            client.close()
            results[name] = {
                "first_call_ms": round(first_ms, 1),
                "sync": _percentiles(sync_ms),
                "async": _percentiles(async_ms),
            }
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{args.calls} calls per configuration against loopback servers")
    header = f"{'configuration':40} {'1st call':>9} {'sync p50':>9} {'p95':>7}"
    print(f"{header} {'async p50':>10} {'p95':>7}")
    for name, r in results.items():
        if name == "calls":
            continue
        sync, asynchronous = r["sync"], r["async"]
        print(
            f"{name:40} {r['first_call_ms']:>8.1f} {sync['p50_ms']:>9.2f} "
            f"{sync['p95_ms']:>7.2f} {asynchronous['p50_ms']:>10.2f} {asynchronous['p95_ms']:>7.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
