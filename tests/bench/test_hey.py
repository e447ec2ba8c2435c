"""support.bench.hey: hey's CSV parsed exactly, precise errors, and hey agreeing with run_load.

The CSV samples are lines a real hey 0.1.4 printed against the bundled upstream (0.2 s
latency, ``-n 10 -c 5``) and against a path it does not serve (``-n 6 -c 3``).
"""

from __future__ import annotations

import socket
import time
from collections import Counter

import pytest

from support.bench.errors import BenchError
from support.bench.hey import NO_RESPONSE, hey_path, parse_csv, run_hey
from support.bench.loadgen import RequestSpec, run_load_sync
from support.bench.processes import UpstreamProcess, start_upstream

HEADER = "response-time,DNS+dialup,DNS,Request-write,Response-delay,Response-read,status-code,offset"
OK_CSV = f"""{HEADER}
0.2016,0.0003,0.0000,0.0001,0.2009,0.0001,200,0.0002
0.2026,0.0004,0.0000,0.0000,0.2021,0.0000,200,0.0003
0.2024,0.0001,0.0000,0.0000,0.2021,0.0001,200,0.0006
0.2027,0.0002,0.0000,0.0001,0.2023,0.0000,200,0.0003
0.2025,0.0002,0.0000,0.0000,0.2022,0.0001,200,0.0005
0.2010,0.0000,0.0000,0.0000,0.2009,0.0001,200,0.2018
0.2012,0.0000,0.0000,0.0000,0.2011,0.0000,200,0.2030
0.2012,0.0000,0.0000,0.0000,0.2012,0.0000,200,0.2030
0.2013,0.0000,0.0000,0.0000,0.2012,0.0000,200,0.2029
0.2013,0.0000,0.0000,0.0000,0.2012,0.0000,200,0.2030
"""
NOT_FOUND_CSV = f"""{HEADER}
0.0010,0.0001,0.0000,0.0001,0.0007,0.0001,404,0.0004
0.0009,0.0001,0.0000,0.0001,0.0007,0.0001,404,0.0005
0.0014,0.0004,0.0000,0.0001,0.0008,0.0000,404,0.0001
0.0003,0.0000,0.0000,0.0000,0.0003,0.0000,404,0.0014
0.0004,0.0000,0.0000,0.0000,0.0004,0.0000,404,0.0015
"""
LATENCY = 0.2
TIMER_SLACK = 0.002  # a server's timer may fire this much early
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
HEADERS = {"Authorization": "Bearer x"}  # the bundled upstream's dummy key: hey shows it in the process list

needs_hey = pytest.mark.skipif(hey_path() is None, reason="hey is not installed (make hey, or apt-get install hey)")


def test_parse_csv_keeps_every_latency_and_status_in_order():
    result = parse_csv(OK_CSV, concurrency=5, n_requests=10)
    assert result.latencies_s[:3] == [0.2016, 0.2026, 0.2024] and len(result.latencies_s) == 10
    assert result.statuses == Counter({200: 10})
    assert (result.completed, result.ok, result.errors, result.n_requests, result.concurrency) == (10, 10, 0, 10, 5)
    # first send at offset 0.0002, last completion at 0.2030 + 0.2013
    assert result.wall_s == pytest.approx(0.4043 - 0.0002)


def test_parse_csv_counts_http_errors():
    result = parse_csv(NOT_FOUND_CSV, concurrency=3, n_requests=5)
    assert result.statuses == Counter({404: 5})
    assert (result.completed, result.ok, result.errors) == (5, 0, 5)
    assert result.wall_s == pytest.approx(0.0019 - 0.0001)


def test_parse_csv_counts_requests_missing_from_the_csv_as_no_response():
    result = parse_csv(NOT_FOUND_CSV, concurrency=3, n_requests=8)
    assert result.statuses == Counter({404: 5, NO_RESPONSE: 3})
    assert (result.completed, result.errors, result.n_requests) == (5, 8, 8)


def test_parse_csv_without_a_request_count_takes_the_rows():
    result = parse_csv(OK_CSV, concurrency=5, n_requests=None)
    assert (result.n_requests, result.completed, result.errors) == (10, 10, 0)


def test_parse_csv_of_a_run_where_nothing_answered():
    result = parse_csv(HEADER + "\n", concurrency=2, n_requests=4)
    assert (result.completed, result.errors, result.wall_s) == (0, 4, 0.0)
    assert result.statuses == Counter({NO_RESPONSE: 4})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "hey printed no CSV (expected a header line)"),
        ("Summary:\n  Total:\t0.1 secs\n", "hey's CSV header is 'Summary:', expected"),
        (f"{HEADER}\n0.2016,0.0003,200,0.0002\n", "line 2 has 4 fields, expected 8: '0.2016,0.0003,200,0.0002'"),
        (f"{HEADER}\n0.2016,0.0003,0.0000,0.0001,0.2009,0.0001,OK,0.0002\n", "hey's CSV line 2 is not numbers"),
        (f"{HEADER}\n0.2016,0.0003,0.0000,0.0001,0.2009,0.0001,200,-1\n", "line 2 has a negative or non-finite time"),
        (f"{HEADER}\n0.2016,0.0003,0.0000,0.0001,0.2009,0.0001,200,nan\n", "line 2 has a negative or non-finite time"),
        (OK_CSV, "hey's CSV has 10 requests, more than the 9 asked for"),
    ],
)
def test_parse_csv_rejects_what_is_not_heys_csv(text, message):
    with pytest.raises(BenchError) as caught:
        parse_csv(text, concurrency=5, n_requests=9)
    assert message in str(caught.value)


def test_run_hey_without_the_binary_names_the_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no hey on PATH
    assert hey_path() is None
    with pytest.raises(BenchError, match=r"hey is not installed .*`make hey` or `apt-get install hey`"):
        run_hey(RequestSpec("GET", "http://127.0.0.1:9/"), concurrency=1, n_requests=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"concurrency": 5, "n_requests": 4}, r"n_requests must be an integer >= concurrency \(5\) for hey, got 4"),
        ({"concurrency": 0, "n_requests": 4}, "concurrency must be an integer >= 1, got 0"),
        ({"concurrency": 1}, "give exactly one of n_requests and duration_s"),
        ({"concurrency": 1, "n_requests": 2, "duration_s": 1.0}, "give exactly one of n_requests and duration_s"),
        ({"concurrency": 1, "duration_s": 0.0}, "duration_s must be at least 0.001, got 0.0"),
        ({"concurrency": 1, "n_requests": 1, "timeout_s": 0}, "timeout_s must be > 0, got 0"),
    ],
)
def test_run_hey_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        run_hey(RequestSpec("GET", "http://127.0.0.1:9/"), **kwargs)


def test_run_hey_refuses_a_header_hey_would_echo_without_echoing_its_value():
    spec = RequestSpec("GET", "http://127.0.0.1:9/", headers={"Authorization": "Bearer sk-secret\nX: y"})
    with pytest.raises(ValueError, match="the value of header 'Authorization' is empty or spans lines") as caught:
        run_hey(spec, concurrency=1, n_requests=1)
    assert "sk-secret" not in str(caught.value)
    with pytest.raises(ValueError, match="hey cannot send a header named 'Bad Name'"):
        run_hey(RequestSpec("GET", "http://127.0.0.1:9/", headers={"Bad Name": "v"}), concurrency=1, n_requests=1)


@pytest.fixture(scope="module")
def upstream():
    running = start_upstream(latency_s=LATENCY)
    try:
        yield running
    finally:
        running.stop()


def chat(upstream: UpstreamProcess, path: str = "/chat/completions") -> RequestSpec:
    return RequestSpec("POST", f"{upstream.base_url}{path}", BODY, HEADERS)


@needs_hey
def test_hey_and_run_load_agree_on_the_upstream_alone(upstream):
    ours = run_load_sync(chat(upstream), concurrency=20, n_requests=400)
    theirs = run_hey(chat(upstream), concurrency=20, n_requests=400)
    for result in (ours, theirs):
        assert result.statuses == Counter({200: 400}) and result.errors == 0
    # hey's latencies are the upstream's: never below its fixed latency
    assert min(theirs.latencies_s) >= LATENCY - TIMER_SLACK
    assert abs(ours.throughput - theirs.throughput) <= 0.10 * max(ours.throughput, theirs.throughput), (
        ours.throughput,
        theirs.throughput,
    )


@needs_hey
def test_hey_counts_http_errors_by_status(upstream):
    result = run_hey(chat(upstream, "/no-such-path"), concurrency=3, n_requests=9)
    assert result.statuses == Counter({404: 9})
    assert (result.completed, result.ok, result.errors) == (9, 0, 9)


@needs_hey
def test_hey_runs_for_a_duration(upstream):
    result = run_hey(chat(upstream), concurrency=2, duration_s=0.5)
    assert result.completed >= 2 and result.n_requests == result.completed
    assert set(result.statuses) == {200} and result.errors == 0


@needs_hey
def test_requests_without_a_response_are_counted_as_errors():
    sock = socket.socket()  # bound but never listening: connections are refused
    sock.bind(("127.0.0.1", 0))
    try:
        result = run_hey(RequestSpec("GET", f"http://127.0.0.1:{sock.getsockname()[1]}/"), concurrency=2, n_requests=6)
    finally:
        sock.close()
    assert result.statuses == Counter({NO_RESPONSE: 6})
    assert (result.completed, result.errors, result.wall_s) == (0, 6, 0.0)


@needs_hey
def test_a_server_that_never_answers_gets_hey_killed_at_the_deadline():
    sock = socket.socket()  # listening but never accepting or answering: each request hangs
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    silent = RequestSpec("GET", f"http://127.0.0.1:{sock.getsockname()[1]}/")
    try:
        started = time.monotonic()
        with pytest.raises(BenchError, match=r"hey did not finish within 1 s and was killed"):
            run_hey(silent, concurrency=1, n_requests=5, timeout_s=1)
        assert time.monotonic() - started < 3
    finally:
        sock.close()


@needs_hey
def test_a_usage_error_quotes_heys_reason_not_its_usage_text():
    with pytest.raises(BenchError) as caught:
        run_hey(RequestSpec("BAD METHOD", "http://127.0.0.1:9/"), concurrency=1, n_requests=1)
    assert str(caught.value) == 'hey exited with status 1: net/http: invalid method "BAD METHOD"'
