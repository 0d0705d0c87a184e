#!/usr/bin/env python3
"""A small typed program against the llmux binding: `mypy --strict` checks it
(bindings/python/tests/test_typing.py), so editors and type checkers know what
create() returns with and without stream=True.

    pip install ./bindings/python      # or PYTHONPATH=bindings/python
    LLMUX_LIB_PATH=<prefix>/lib/libllmux.so python3 examples/python/typed_client.py CONFIG.json
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any, Dict, List, Optional

import llmux


def ask(gw: llmux.Gateway, question: str) -> Optional[str]:
    messages: List[Dict[str, Any]] = [{"role": "user", "content": question}]
    try:
        resp: llmux.ChatCompletion = gw.chat.completions.create(
            model="smart", messages=messages, task="answer", timeout=(5, 10), temperature=0.2)
    except llmux.RateLimitError as e:
        wait: Optional[float] = e.retry_after
        print("rate limited (HTTP %s, retry after %s s, code %s)" % (e.status_code, wait, e.code))
        return None
    cost: Optional[float] = resp.llmux.cost_usd
    print("answered by", resp.llmux.provider, "cost", cost)
    print(resp.model_dump_json(exclude_none=True, indent=2))
    content: Optional[str] = resp.choices[0].message.content
    return content


def stream(gw: llmux.Gateway, question: str) -> str:
    s: llmux.Stream = gw.chat.completions.create(
        model="smart", messages=[{"role": "user", "content": question}], stream=True)
    parts: List[str] = []
    with s:
        for chunk in s:
            c: llmux.ChatCompletionChunk = chunk
            if c.choices and c.choices[0].delta.content:
                parts.append(c.choices[0].delta.content)
    final = s.completion
    if final is not None:
        print("finish:", final.choices[0].finish_reason)
    return "".join(parts)


async def ask_async(config: str, question: str) -> Optional[str]:
    async with llmux.AsyncGateway(config) as gw:
        resp = await gw.chat.completions.create(
            model="smart", messages=[{"role": "user", "content": question}])
        s = await gw.chat.completions.create(
            model="smart", messages=[{"role": "user", "content": question}], stream=True)
        async with s:
            async for chunk in s:
                print(chunk.choices[0].delta.content or "" if chunk.choices else "", end="")
        print()
        answer: Optional[str] = resp.choices[0].message.content
        return answer


def main(argv: List[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    with llmux.Gateway(argv[1]) as gw:
        print(ask(gw, "what is llmux?"))
        print(stream(gw, "stream this"))
        report: Dict[str, Any] = gw.spend(group_by="task")
        print(report["total"])
    print(asyncio.run(ask_async(argv[1], "and async?")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
