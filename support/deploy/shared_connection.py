"""Several workers on one inherited connection: find it from the replies and the upstream's journal.

``keycheck_at_import`` checks its key with a sync client when it is imported; under
``gunicorn --preload`` that happens in the master, and every forked worker inherits the
client with the kept-alive connection in its pool. Each caller here sends a prompt of its
own and knows the answer the upstream gives that prompt (it is seeded by the prompt), so a
reply can be checked; the route returns the upstream's request id, which the journal maps
to the TCP connection it came on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import httpx
from openai import AsyncOpenAI

from ..upstream.journal import JournalEntry

__all__ = ["Answer", "Findings", "ask_in_waves", "expected_replies", "findings", "server_warnings"]


@dataclass(frozen=True)
class Answer:
    prompt: str
    status: int  # 0: no answer within the caller's timeout
    pid: int | None = None
    request_id: str | None = None
    text: str | None = None


async def expected_replies(base_url: str, api_key: str, model: str, prompts: Sequence[str]) -> dict[str, str]:
    """What the upstream answers each prompt, asked directly (all at once)."""
    async with AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0) as client:

        async def ask(prompt: str) -> str:
            completion = await client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": prompt}], max_completion_tokens=16
            )
            return completion.choices[0].message.content or ""

        replies = await asyncio.gather(*(ask(prompt) for prompt in prompts))
    return dict(zip(prompts, replies, strict=True))


async def _ask(http: httpx.AsyncClient, url: str, prompt: str) -> Answer:
    try:
        response = await http.post(url, json={"prompt": prompt})
    except httpx.TimeoutException:
        return Answer(prompt, 0)
    if response.status_code != 200:
        return Answer(prompt, response.status_code)
    reply = response.json()
    return Answer(prompt, 200, reply["pid"], reply["request_id"], reply["text"])


async def ask_in_waves(url: str, prompts: Sequence[str], *, wave: int, timeout_s: float = 3.0) -> list[Answer]:
    """Post the prompts `wave` at a time (each on its own connection), wave after wave."""
    answers: list[Answer] = []
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=timeout_s, limits=limits) as http:
        for start in range(0, len(prompts), wave):
            answers += await asyncio.gather(*(_ask(http, url, p) for p in prompts[start : start + wave]))
    return answers


@dataclass
class Findings:
    # "right answer", "someone else's answer", "500", "no answer"
    outcomes: Counter[str] = field(default_factory=Counter)
    checks: int = 0  # key checks the upstream received: one per process that imported the module
    keycheck_connection: int | None = None  # the connection the first key check opened
    calls_on_it: int = 0  # chat calls the upstream received on that connection
    pids_on: dict[int, set[int]] = field(default_factory=dict)  # connection -> the worker pids that got replies from it

    @property
    def broken(self) -> int:
        return sum(n for outcome, n in self.outcomes.items() if outcome != "right answer")

    @property
    def shared(self) -> list[int]:
        """Connections whose replies reached more than one process."""
        return sorted(c for c, pids in self.pids_on.items() if len(pids) > 1)


def findings(answers: Sequence[Answer], expected: dict[str, str], entries: Sequence[JournalEntry]) -> Findings:
    """Each answer checked against the prompt's own reply; the journal's connections by worker."""
    found = Findings()
    for answer in answers:
        if answer.status == 200:
            found.outcomes["right answer" if answer.text == expected[answer.prompt] else "someone else's answer"] += 1
        else:
            found.outcomes["no answer" if answer.status == 0 else str(answer.status)] += 1
    checks = [e for e in entries if e.endpoint == "models"]
    found.checks = len(checks)
    found.keycheck_connection = checks[0].connection if checks else None
    found.calls_on_it = sum(1 for e in entries if e.endpoint != "models" and e.connection == found.keycheck_connection)
    connection_of = {e.request_id: e.connection for e in entries}
    pids: defaultdict[int, set[int]] = defaultdict(set)
    for answer in answers:
        connection = connection_of.get(answer.request_id or "")
        if connection is not None and answer.pid is not None:
            pids[connection].add(answer.pid)
    found.pids_on = dict(pids)
    return found


class _Keep(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(level=logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record.getMessage())


@contextlib.contextmanager
def server_warnings(logger_name: str = "uvicorn.error") -> Iterator[list[str]]:
    """Collect what an in-process uvicorn server (the bundled upstream) warns about while the
    block runs, instead of printing it: two workers' requests interleaved on one connection
    reach the upstream as ``Invalid HTTP request received.``. Enter it after the server started
    (starting uvicorn reconfigures logging)."""
    logger = logging.getLogger(logger_name)
    seen: list[str] = []
    handlers, propagate = logger.handlers[:], logger.propagate
    logger.handlers, logger.propagate = [_Keep(seen)], False
    try:
        yield seen
    finally:
        logger.handlers, logger.propagate = handlers, propagate
