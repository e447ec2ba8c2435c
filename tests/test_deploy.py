"""support.deploy: the template and the pitfall services as real uvicorn and gunicorn processes.

Every test starts real child processes on loopback against the bundled upstream (in a
thread of this process), and leaves none behind: each `servers.start` is a ``with`` block,
which stops the master and kills its process group.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from collections.abc import Iterator

import httpx
import psutil
import pytest

from support.deploy import file_source, memory, servers, shared_connection, shutdown
from support.upstream import JournalEntry, RunningUpstream, upstream_in_thread
from support.upstream_calls import UpstreamCalls
from tests.conftest import MODEL, ROOT, wait_until

TEMPLATE = "support.apps.hardened:app"
KEY = "sk-test-" + "x" * 24  # must never show in an error
BODY = {"messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture
def upstream() -> Iterator[RunningUpstream]:
    with upstream_in_thread(latency=0.05, ttft=0.05, chunk_delay=0.05, reply_tokens=80, models=[MODEL]) as running:
        yield running


def _env(upstream: RunningUpstream, **settings: str | int) -> dict[str, str]:
    return servers.template_env(upstream.base_url, KEY, MODEL, **settings)


def _auth(env: dict[str, str]) -> dict[str, str]:
    return {"authorization": f"Bearer {env['SERVICE_TOKENS']}"}


def _gone(pids: list[int]) -> bool:
    return not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in pids)


# --- starting, serving, stopping ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["uvicorn", "gunicorn"])
def test_template_serves_with_two_workers_and_stops_with_all_of_them(upstream: RunningUpstream, kind: str) -> None:
    env = _env(upstream)
    with servers.start(kind, TEMPLATE, workers=2, env=env) as svc:  # gunicorn: the shipped config file
        pids = svc.worker_pids()
        assert len(pids) == 2 and svc.process.pid not in pids
        reply = httpx.post(svc.base_url + "/v1/chat", json=BODY, headers=_auth(env), timeout=10)
        assert reply.status_code == 200, reply.text
        stopped = svc.stop()
    assert stopped.returncode in (0, -signal.SIGTERM) and stopped.seconds < 5
    assert _gone([svc.process.pid, *pids])


def test_the_shipped_config_file_is_the_one_run() -> None:
    command = servers.gunicorn_command(TEMPLATE, port=8000, workers=2)
    assert command[:5] == ["python", "-m", "gunicorn", "-c", "support/apps/hardened/gunicorn.conf.py"]
    assert "gunicorn_worker.HardenedWorker" in file_source(servers.GUNICORN_CONF).data


def test_the_readme_shows_the_commands_the_notebook_runs() -> None:
    """README's "Deploying the template" commands are `servers`' own, on port 8000 with 3 workers."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Deploying the template") : readme.index("## The benchmark")]
    shown = [line.strip() for line in section.splitlines() if line.strip().startswith("python -m ")]
    assert shown == [
        " ".join(servers.uvicorn_command(TEMPLATE, port=8000, workers=3)),
        " ".join(servers.gunicorn_command(TEMPLATE, port=8000, workers=3)),
    ], shown
    assert (ROOT / servers.GUNICORN_CONF).is_file()


def test_a_killed_worker_is_replaced(upstream: RunningUpstream) -> None:
    with servers.start("gunicorn", TEMPLATE, workers=2, env=_env(upstream)) as svc:
        victim = svc.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        pids = svc.wait_for_workers(2, exclude=[victim], timeout_s=15)
        assert victim not in pids and httpx.get(svc.base_url + "/healthz", timeout=5).status_code == 200


def test_memory_has_the_master_and_each_worker(upstream: RunningUpstream) -> None:
    with servers.start("uvicorn", TEMPLATE, workers=2, env=_env(upstream)) as svc:
        rows = memory.deployment_memory(svc)
    assert [r.role for r in rows] == ["master", "worker 1", "worker 2"]
    assert all(0 < r.uss <= r.pss <= r.rss for r in rows)
    assert "total" in memory.memory_table(rows).splitlines()[-1]


# --- attacks: bad configuration, a taken port, bad arguments ------------------------------------


def test_a_bad_setting_stops_gunicorn_in_one_line_naming_the_variable_not_the_key(upstream: RunningUpstream) -> None:
    started = time.monotonic()
    with pytest.raises(servers.DeployError) as failure:
        servers.start("gunicorn", TEMPLATE, workers=2, env=_env(upstream, max_concurrency="many"), timeout_s=20)
    assert time.monotonic() - started < 10
    message = str(failure.value)
    assert "gunicorn: error: cannot start: SERVICE_MAX_CONCURRENCY: Input should be a valid integer" in message
    assert KEY not in message and "Traceback" not in message


def test_a_bad_setting_under_bare_uvicorn_workers_is_reported_not_a_hang(upstream: RunningUpstream) -> None:
    # Bare `uvicorn --workers` checks nothing before the fork: each worker's lifespan fails with
    # pydantic's traceback, and the supervisor gives up (with exit status 0). `start` says so.
    started = time.monotonic()
    with pytest.raises(servers.DeployError, match="max_concurrency") as failure:
        servers.start("uvicorn", TEMPLATE, workers=2, env=_env(upstream, max_concurrency="many"), timeout_s=20)
    assert time.monotonic() - started < 20 and KEY not in str(failure.value)


def test_gunicorn_config_refuses_a_missing_key_in_one_line(upstream: RunningUpstream) -> None:
    with pytest.raises(servers.DeployError) as failure:
        servers.start("gunicorn", TEMPLATE, workers=1, env=_env(upstream) | {"OPENAI_API_KEY": " "}, timeout_s=20)
    message = str(failure.value)
    assert "gunicorn: error: cannot start: OPENAI_API_KEY is missing or blank" in message
    assert "Traceback" not in message and "exited with status" in message


@pytest.mark.parametrize("kind", ["uvicorn", "gunicorn"])
def test_a_taken_port_fails_cleanly_not_a_hang(upstream: RunningUpstream, kind: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(servers.DeployError, match=r"(?i)address already in use"):
            servers.start(kind, TEMPLATE, workers=1, env=_env(upstream), port=port, timeout_s=20)
    assert time.monotonic() - started < 15  # gunicorn retries the bind a few times, then gives up


def test_bad_arguments_are_refused_before_anything_starts() -> None:
    with pytest.raises(ValueError, match="workers must be at least 1"):
        servers.start("uvicorn", TEMPLATE, workers=0, env={})
    with pytest.raises(ValueError, match="kind must be"):
        servers.start("hypercorn", TEMPLATE, workers=1, env={})  # type: ignore[arg-type]


# --- the pitfalls ---------------------------------------------------------------------------


def _ask(upstream: RunningUpstream, module: str, extra: list[str]) -> shared_connection.Findings:
    prompts = [f"ticket {i}" for i in range(12)]
    expected = asyncio.run(shared_connection.expected_replies(upstream.base_url, KEY, MODEL, prompts))
    window = UpstreamCalls(upstream.journal)
    app = f"support.deploy.{module}:app"
    with servers.start("gunicorn", app, workers=2, env=_env(upstream), config=None, extra=extra) as svc:
        answers = asyncio.run(shared_connection.ask_in_waves(svc.base_url + "/chat", prompts, wave=4, timeout_s=2))
    return shared_connection.findings(answers, expected, window.entries)


def test_preload_puts_the_workers_on_the_key_checks_connection(upstream: RunningUpstream) -> None:
    found = _ask(upstream, "keycheck_at_import", ["--preload"])
    # The master made the check and never serves: a chat call on its connection came from a worker.
    assert found.keycheck_connection is not None and found.calls_on_it > 0, found


def test_the_lifespan_client_is_per_worker_even_with_preload(upstream: RunningUpstream) -> None:
    found = _ask(upstream, "keycheck_in_lifespan", ["--preload"])
    assert found.outcomes == {"right answer": 12} and not found.shared, found


def test_findings_reads_answers_against_the_journal() -> None:
    entries = [
        JournalEntry(
            seq=0, request_id="r0", method="GET", path="/v1/models", received_at=0, endpoint="models", connection=1
        ),
        JournalEntry(
            seq=1, request_id="r1", method="POST", path="/", received_at=1, endpoint="chat.completions", connection=1
        ),
        JournalEntry(
            seq=2, request_id="r2", method="POST", path="/", received_at=2, endpoint="chat.completions", connection=1
        ),
    ]
    answers = [
        shared_connection.Answer("a", 200, pid=10, request_id="r1", text="A"),
        shared_connection.Answer("b", 200, pid=11, request_id="r2", text="A"),  # a's answer, given to b
        shared_connection.Answer("c", 0),
    ]
    found = shared_connection.findings(answers, {"a": "A", "b": "B", "c": "C"}, entries)
    assert found.outcomes == {"right answer": 1, "someone else's answer": 1, "no answer": 1}
    assert found.keycheck_connection == 1 and found.calls_on_it == 2 and found.shared == [1] and found.broken == 2


def test_a_blocking_call_longer_than_the_timeout_gets_its_worker_killed() -> None:
    with upstream_in_thread(latency=3.0, models=[MODEL]) as slow:
        extra = ["--timeout", "2"]
        env = servers.template_env(slow.base_url, KEY, MODEL)
        with servers.start(
            "gunicorn", "support.deploy.blocking:app", workers=1, env=env, config=None, extra=extra
        ) as svc:
            with pytest.raises(httpx.RemoteProtocolError):
                httpx.post(svc.base_url + "/blocking", timeout=15)
            # gunicorn logs the timeout, sends SIGABRT, and logs the signal once it reaps the worker
            wait_until(lambda: svc.log_lines("was sent SIGABRT"), timeout=10, what="the reaped worker's log line")
            assert svc.log_lines("WORKER TIMEOUT")


def test_the_template_worker_bounds_shutdown_and_sends_a_last_event(upstream: RunningUpstream) -> None:
    env = _env(upstream, graceful_shutdown_s=1)  # the stream takes 80 x 0.05 s
    with servers.start("gunicorn", TEMPLATE, workers=1, env=env) as svc:
        run = shutdown.stream_through_shutdown(svc, "/v1/chat/stream", BODY, headers=_auth(env), after_s=0.1)
    assert run.events["error"] == 1 and run.events["done"] == 0 and run.ended == "complete", run
    assert run.exit.seconds < 3, run.exit  # not the 4 s of the stream
