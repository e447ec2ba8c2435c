"""``python -m support.bench``: a tiny real run (real processes, real sockets) and the CLI contract.

The figures themselves are measurements, never asserted here (notebook 08 asserts only
orderings that hold on any machine); these tests check that every pattern runs in every
round under both loads, that the output files are complete and strict JSON, that the
machine's conditions are recorded, and that bad flags get a usage error.
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
            "--latency-p99",
            "0.2",
            "--concurrency",
            "2",
            "--window",
            "0.6",
            "--rounds",
            "2",
            "--ramp",
            "0.2",
            "--open-rate",
            "10",
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
    order = ["upstream", "silent", "await_sync", "async", "hardened", "hardened_2w"]
    # round-robin: every pattern in round 1, then every pattern in round 2; each under both loads, but
    # the upstream alone under the closed loop only (with its journal the open loop needs no ceiling)
    assert [(r["round"], r["pattern"], r["mode"]) for r in data["rows"]] == [
        (n, name, mode)
        for n in (1, 2)
        for name in order
        for mode in ("closed", "open")
        if name != "upstream" or mode == "closed"
    ]
    rows = {(row["pattern"], row["mode"], row["round"]): row for row in data["rows"]}
    for n in (1, 2):
        closed = {name: rows[(name, "closed", n)] for name in order}
        assert closed["upstream"]["vs_upstream"]["throughput"] == 1.0
        assert closed["await_sync"]["ok"] == 0 and closed["await_sync"]["upstream_requests"] > 0
        # peak in flight, from the journal: the load keeps both clients' calls open; a blocked loop holds one
        assert closed["upstream"]["upstream_peak_in_flight"] == 2
        assert closed["silent"]["upstream_peak_in_flight"] == closed["await_sync"]["upstream_peak_in_flight"] == 1
        for name in ("async", "hardened", "hardened_2w"):
            for mode in ("closed", "open"):
                row = rows[(name, mode, n)]
                assert row["errors"] == 0 and row["ok"] > 0, row
                assert row["lag_ms"]["p99"] is not None and row["peak_rss_mib"] > 0 and row["service_cpu_ms"] > 0
                assert row["machine"]["wall_s"] > 0 and isinstance(row["contention"], list)
        assert rows[("hardened", "closed", n)]["cores"] in {"core 1", "all"}  # pinned with two cores or more
        assert (
            rows[("hardened_2w", "closed", n)]["workers"] == 2 and rows[("hardened_2w", "closed", n)]["cores"] == "all"
        )
        assert rows[("async", "open", n)]["rate_rps"] == 10 and rows[("async", "open", n)]["send_lag_p99_ms"] < 100
    assert data["upstream"]["bundled"] is True and data["upstream"]["latency_s"] == 0.1
    assert data["upstream"]["latency_p99_s"] == 0.2 and 0.1 < data["upstream"]["mean_latency_s"] < 0.2
    assert 0.05 <= data["upstream"]["measured_s"] < 1
    assert data["machine"]["cpu_model"] and data["calibration"]["client_cpu_us_per_request"] > 0
    assert isinstance(data["contended"], bool) and data["placement"]
    summaries = {(s["pattern"], s["level"]): s for s in data["summaries"]}
    assert summaries[("hardened", "C=2")]["rounds"] == 2 and summaries[("hardened", "10/s")]["rounds"] == 2
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
        argv += ["--rounds", "1", "--open-rate", "0", "--ramp", "0.2"]
        status = main([*argv, "--streams", "3", "--transport-rounds", "0", "--out", str(tmp_path)])
    finally:
        server.stop()
    assert status == 0
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["upstream"]["bundled"] is False and 0.15 <= data["upstream"]["latency_s"] < 1  # measured, not 9
    rows = {row["pattern"]: row for row in data["rows"]}
    assert len(rows) == len(data["rows"]) == 3  # one round, the closed loop only
    assert rows["hardened"]["errors"] == 0 and rows["hardened"]["ok"] > 0  # it called the server with the key
    assert all(row["upstream_requests"] is None and row["upstream_peak_in_flight"] is None for row in rows.values())
    assert data["streams"]["completed"] == 3
    assert key not in (tmp_path / "results.json").read_text() + capsys.readouterr().out


def test_a_running_server_needs_its_key(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    argv = ["--base-url", "http://127.0.0.1:9/v1", "--api-key-env", "NO_SUCH_KEY", "--transport-rounds", "0"]
    assert main([*argv, "--streams", "0", "--patterns", "silent"]) == 1
    assert "$NO_SUCH_KEY, which is missing or empty" in capsys.readouterr().err


def test_table_has_a_row_per_pattern_and_load(tiny_run: Path) -> None:
    text = (tiny_run / "results.md").read_text()
    assert text.startswith("machine: ") and "\ncontended: " in text and "\ncalibration: " in text
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| pattern | load | ok req/s | vs upstream | spread")
    assert len(table) == 1 + 1 + 5 * 2  # the header, the upstream alone, five patterns under two loads


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--patterns", "nope"], "unknown pattern(s): nope"),
        (["--latency", "0"], "--latency must be > 0"),
        (["--concurrency", "0"], "concurrency levels must be integers >= 1"),
        (["--window", "-1"], "--window must be > 0"),
        (["--rounds", "0"], "--rounds must be >= 1"),
        (["--open-rate", "-5"], "--open-rate, --ramp and --stream-ramp >= 0"),
        (["--latency", "0.5", "--latency-p99", "0.4"], "--latency-p99 must be 0 (constant) or at least --latency"),
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
