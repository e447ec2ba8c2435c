"""``python -m support.bench``: a tiny real run (real processes, real sockets) and the CLI contract.

The figures themselves are measurements, never asserted here (notebook 08 asserts only
orderings that hold on any machine); these tests check that every pattern runs, that
the output files are complete and strict JSON, and that bad flags get a usage error.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.bench.__main__ import main
from support.bench.patterns import PATTERNS
from support.bench.processes import start_upstream


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    status = main(
        [
            "--latency",
            "0.1",
            "--concurrency",
            "2",
            "--window",
            "0.6",
            "--patterns",
            "silent,await_sync,async,hardened,hardened_2w",
            "--streams",
            "8",
            "--transport-rounds",
            "1",
            "--out",
            str(out),
        ]
    )
    assert status == 0
    return out


def test_tiny_run_writes_every_file(tiny_run: Path) -> None:
    names = {p.name for p in tiny_run.iterdir()}
    assert {"results.json", "results.md", "throughput.png", "latency.png"} <= names
    assert all((tiny_run / name).stat().st_size > 0 for name in names)
    assert (tiny_run / "throughput.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tiny_run_measures_each_pattern_against_the_ceiling(tiny_run: Path) -> None:
    data = json.loads((tiny_run / "results.json").read_text(), parse_constant=pytest.fail)  # strict: no NaN
    rows = {row["pattern"]: row for row in data["rows"]}
    assert list(rows) == ["upstream", "silent", "await_sync", "async", "hardened", "hardened_2w"]
    assert rows["upstream"]["vs_upstream"]["throughput"] == 1.0
    assert rows["await_sync"]["ok"] == 0 and rows["await_sync"]["upstream_requests"] > 0
    # peak in flight, from the journal: the load keeps both clients' calls open; a blocked loop holds one
    assert rows["upstream"]["upstream_peak_in_flight"] == 2
    assert rows["silent"]["upstream_peak_in_flight"] == rows["await_sync"]["upstream_peak_in_flight"] == 1
    assert data["upstream"]["bundled"] is True and data["upstream"]["latency_s"] == 0.1
    assert 0.1 <= data["upstream"]["measured_s"] < 1
    for name in ("async", "hardened", "hardened_2w"):
        assert rows[name]["errors"] == 0 and rows[name]["ok"] > 0, rows[name]
        assert rows[name]["lag_ms"]["p99"] is not None and rows[name]["peak_rss_mib"] > 0
        assert rows[name]["service_cpu_ms"] > 0
    assert rows["hardened_2w"]["workers"] == 2
    assert data["streams"]["completed"] == data["streams"]["streams"] == 8
    assert set(data["transports"]["median_ms"]) == {"httpx", "aiohttp"}
    assert all(ms > 0 for ms in data["transports"]["median_ms"].values())
    assert data["transports"]["examined_per_call"]["aiohttp"] == {"1": 1.0, "50": 1.0}


def test_a_running_server_instead_of_the_bundled_upstream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--base-url: the services and the upstream-alone rows call that server, with its key and the
    model asked for; the ratios use its measured latency; there is no journal to read."""
    key = "key-of-the-running-server"
    server = start_upstream(latency_s=0.15, extra_args=("--api-key", key, "--models", "served-elsewhere"))
    monkeypatch.setenv("RUNNING_SERVER_KEY", key)
    try:
        argv = ["--base-url", server.base_url, "--api-key-env", "RUNNING_SERVER_KEY", "--model", "served-elsewhere"]
        argv += ["--latency", "9", "--concurrency", "2", "--window", "0.6", "--patterns", "silent,hardened"]
        status = main([*argv, "--streams", "3", "--transport-rounds", "0", "--out", str(tmp_path)])
    finally:
        server.stop()
    assert status == 0
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["upstream"]["bundled"] is False and 0.15 <= data["upstream"]["latency_s"] < 1  # measured, not 9
    rows = {row["pattern"]: row for row in data["rows"]}
    assert rows["hardened"]["errors"] == 0 and rows["hardened"]["ok"] > 0  # it called the server with the key
    assert all(row["upstream_requests"] is None and row["upstream_peak_in_flight"] is None for row in rows.values())
    assert data["streams"]["completed"] == 3
    assert key not in (tmp_path / "results.json").read_text() + capsys.readouterr().out


def test_a_running_server_needs_its_key(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    argv = ["--base-url", "http://127.0.0.1:9/v1", "--api-key-env", "NO_SUCH_KEY", "--transport-rounds", "0"]
    assert main([*argv, "--streams", "0", "--patterns", "silent"]) == 1
    assert "$NO_SUCH_KEY, which is missing or empty" in capsys.readouterr().err


def test_table_has_a_row_per_level(tiny_run: Path) -> None:
    table = (tiny_run / "results.md").read_text().splitlines()
    assert table[0].startswith("| pattern | C | ok req/s")
    assert sum(line.startswith("| ") for line in table[2:]) == 6


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--patterns", "nope"], "unknown pattern(s): nope"),
        (["--latency", "0"], "--latency must be > 0"),
        (["--concurrency", "0"], "concurrency levels must be integers >= 1"),
        (["--window", "-1"], "--window must be > 0"),
    ],
)
def test_bad_flags_are_usage_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2 and message in capsys.readouterr().err


def test_help_lists_every_pattern(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in PATTERNS)
