"""``magray llm models|test|ask``: configured models, a round-trip check, raw completions."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from magray.cli._complete import complete_llm_models
from magray.cli._context import AppContext, json_option, pass_app

if TYPE_CHECKING:
    from magray.llm import LLMClient


@click.group()
def llm() -> None:
    """Language models: list what is configured, test a model, ask one directly.

    Models are litellm model strings ('openai/gpt-4o-mini', 'anthropic/claude-3-5-haiku-latest',
    'ollama/llama3', 'local/gemma3-270m', ...), set with `magray config set llm.model ...`.
    Keys come from the providers' usual env vars (OPENAI_API_KEY, ...) or llm.api_key.
    """


def _client(app: AppContext) -> LLMClient:
    from magray.llm import LLMClient

    return LLMClient(settings=app.settings)


@llm.command("models")
@json_option
@pass_app
def llm_models(app: AppContext) -> None:
    """List configured models and whether their API keys are present (keys are never shown)."""
    from magray.cli._output import emit_json, print_table
    from magray.llm import describe_models

    infos = describe_models(app.settings.llm)
    if app.json:
        emit_json({"models": infos, "rule_based_only": not infos})
        return
    if not infos:
        click.echo("no language model is configured: magray uses its rule-based agents.")
        click.echo("set one with: magray config set llm.model openai/gpt-4o-mini", err=True)
        return
    print_table(
        ["model", "role", "provider", "server", "key", "key source"],
        [
            (
                i.model,
                i.role,
                i.provider or "?",
                i.api_base or "(provider default)",
                i.key,
                i.key_source,
            )
            for i in infos
        ],
    )


@llm.command("test")
@click.argument("model", required=False, shell_complete=complete_llm_models)
@click.option("--timeout", type=float, default=None, help="Seconds for the request.")
@json_option
@pass_app
def llm_test(app: AppContext, model: str | None, *, timeout: float | None) -> None:
    """One round trip to MODEL (default: llm.model, no fallbacks) with timing and usage."""
    from magray.llm import LLMNotConfiguredError

    client = _client(app)
    target = model or client.model
    if target is None:
        raise LLMNotConfiguredError(
            "no model to test",
            hint="pass one (`magray llm test openai/gpt-4o-mini`) or set llm.model",
        )
    params: dict[str, Any] = {"max_tokens": 8, "temperature": 0}
    if timeout is not None:
        params["timeout"] = timeout
    try:
        reply = client.complete("Reply with the single word: pong", model=target, **params)
    finally:
        client.close()
    data = {
        "model": target,
        "ok": True,
        "latency_ms": round(reply.latency_ms, 1),
        "reply": (reply.text or "").strip(),
        "usage": reply.to_dict()["usage"],
    }
    if app.json:
        from magray.cli._output import emit_json

        emit_json(data)
        return
    cost = reply.usage.cost_usd
    click.echo(
        f"{target}: ok in {reply.latency_ms:.0f} ms — replied {data['reply']!r} "
        f"({reply.usage.total_tokens} tokens"
        + (f", ${cost:.6f}" if cost is not None else ", cost unknown")
        + ")"
    )


@llm.command("ask")
@click.argument("prompt", nargs=-1)
@click.option(
    "--model",
    "-m",
    default=None,
    shell_complete=complete_llm_models,
    help="Use this model only (default: llm.model + fallbacks).",
)
@click.option("--system", "-s", default=None, help="A system message.")
@click.option("--stream/--no-stream", default=False, help="Print the reply as it arrives.")
@click.option("--max-tokens", type=int, default=None, help="Completion token limit.")
@click.option("--temperature", type=float, default=None, help="Sampling temperature.")
@json_option
@pass_app
def llm_ask(
    app: AppContext,
    prompt: tuple[str, ...],
    *,
    model: str | None,
    system: str | None,
    stream: bool,
    max_tokens: int | None,
    temperature: float | None,
) -> None:
    """Send PROMPT (or stdin) to the model and print the raw completion.

    With --json the whole result is printed: text, tool calls, model, usage,
    cost, latency and every attempt (retries and fallbacks).
    """
    from magray.common.errors import InvalidInputError

    text = " ".join(prompt).strip()
    if not text or text == "-":
        text = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read().strip()
    if not text:
        raise InvalidInputError(
            "nothing to ask", hint='pass a prompt (`magray llm ask "..."`) or pipe one on stdin'
        )
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": text}
    ]
    params: dict[str, Any] = {}
    if max_tokens is not None:
        params["max_tokens"] = max_tokens
    if temperature is not None:
        params["temperature"] = temperature
    client = _client(app)
    try:
        if stream:
            chunks = client.complete(messages, stream=True, model=model, **params)
            for delta in chunks:
                if delta.text and not app.json:
                    click.echo(delta.text, nl=False)
            completion = chunks.collect()
            if not app.json:
                click.echo()
        else:
            completion = client.complete(messages, model=model, **params)
    finally:
        client.close()
    if app.json:
        from magray.cli._output import emit_json

        emit_json(completion.to_dict())
        return
    if not stream:
        click.echo(completion.text or "")
    for call in completion.tool_calls:
        click.echo(f"[tool call] {call.name}({call.raw_arguments})", err=True)
