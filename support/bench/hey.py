"""A compiled cross-check of the load generator: the same closed loop, driven by ``hey``.

`loadgen.run_load` is Python on an event loop; on a small machine it could be what caps
a figure rather than the server under test. hey (rakyll/hey, Debian's ``hey`` package) is
an independent implementation in Go that runs the same closed loop: ``-c`` workers, each
sending its next request when the previous one completes, over keep-alive connections.
If both agree on the bundled upstream alone, the load generator is not what limits the
benchmark's figures.

What hey measures: each request's time from just before it is sent until its body has
been read, so a worker's first request also pays for the connection's setup (as in
`run_load`). With ``-o csv`` it prints one line per request that got an HTTP status
(columns `CSV_COLUMNS`, seconds, offsets from the start of the run); a request that got
none (refused, reset, timed out) is left out of the CSV, so `parse_csv` counts the
missing ones as `NO_RESPONSE` errors without a latency.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess

from .errors import BenchError
from .loadgen import LoadResult, RequestSpec
from .processes import die_with_parent

__all__ = ["CSV_COLUMNS", "INSTALL_HINT", "NO_RESPONSE", "hey_path", "parse_csv", "run_hey"]

CSV_COLUMNS = (
    "response-time",
    "DNS+dialup",
    "DNS",
    "Request-write",
    "Response-delay",
    "Response-read",
    "status-code",
    "offset",
)
NO_RESPONSE = "NoResponse"  # status of a request hey sent that got no HTTP status (absent from its CSV)
INSTALL_HINT = "install it with `make hey` or `apt-get install hey`"
_HEADER_NAME = re.compile(r"[\w-]+")  # what hey's -H parser accepts as a name (it wants "Name: value")
_STDERR_TAIL = 500  # characters of hey's stderr quoted in an error


def hey_path() -> str | None:
    """Where the ``hey`` binary is, or None when it is not on PATH."""
    return shutil.which("hey")


def parse_csv(text: str, concurrency: int, n_requests: int | None) -> LoadResult:
    """The `LoadResult` of hey's ``-o csv`` output for a run of `n_requests` requests.

    Rows are requests that got an HTTP status; the ``n_requests - rows`` missing ones are
    counted as `NO_RESPONSE` errors (in `statuses` and `errors`, not in the latencies).
    `n_requests` None (a run bounded by duration): the rows are all there is to count.
    ``wall_s`` runs from the first send to the last completion (``offset + response-time``).
    Anything that is not hey's CSV raises BenchError naming the line.
    """
    lines = text.splitlines()
    if not lines:
        raise BenchError("hey printed no CSV (expected a header line)")
    header = tuple(lines[0].strip().split(","))
    if header != CSV_COLUMNS:
        raise BenchError(f"hey's CSV header is {lines[0].strip()!r}, expected {','.join(CSV_COLUMNS)!r}")
    rows = [(number, line) for number, line in enumerate(lines[1:], start=2) if line.strip()]
    if n_requests is None:
        n_requests = len(rows)
    elif len(rows) > n_requests:
        raise BenchError(f"hey's CSV has {len(rows)} requests, more than the {n_requests} asked for")
    result = LoadResult(concurrency=concurrency, n_requests=n_requests)
    first_send, last_done = math.inf, -math.inf
    for number, line in rows:
        fields = line.strip().split(",")
        if len(fields) != len(CSV_COLUMNS):
            raise BenchError(f"hey's CSV line {number} has {len(fields)} fields, expected {len(CSV_COLUMNS)}: {line!r}")
        try:
            latency, offset, status = float(fields[0]), float(fields[7]), int(fields[6])
        except ValueError:
            raise BenchError(f"hey's CSV line {number} is not numbers where expected: {line!r}") from None
        if not (math.isfinite(latency) and math.isfinite(offset) and latency >= 0 and offset >= 0):
            raise BenchError(f"hey's CSV line {number} has a negative or non-finite time: {line!r}")
        result.latencies_s.append(latency)
        result.statuses[status] += 1
        if status >= 400:
            result.errors += 1
        first_send, last_done = min(first_send, offset), max(last_done, offset + latency)
    if missing := n_requests - len(rows):
        result.statuses[NO_RESPONSE] += missing
        result.errors += missing
    result.wall_s = last_done - first_send if rows else 0.0
    return result


def _check_arguments(
    spec: RequestSpec, concurrency: int, n_requests: int | None, duration_s: float | None, timeout_s: float
) -> None:
    if not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be an integer >= 1, got {concurrency!r}")
    if (n_requests is None) == (duration_s is None):
        raise ValueError("give exactly one of n_requests and duration_s")
    if n_requests is not None and (not isinstance(n_requests, int) or n_requests < concurrency):
        raise ValueError(f"n_requests must be an integer >= concurrency ({concurrency}) for hey, got {n_requests!r}")
    if duration_s is not None and not duration_s >= 0.001:
        raise ValueError(f"duration_s must be at least 0.001, got {duration_s!r}")
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s!r}")
    # hey echoes a header it cannot parse to stderr, value included: refuse it here instead.
    for name, value in spec.headers.items():
        if not _HEADER_NAME.fullmatch(name):
            raise ValueError(f"hey cannot send a header named {name!r} (letters, digits, '_' and '-' only)")
        if not value.strip() or "\r" in value or "\n" in value:
            raise ValueError(f"the value of header {name!r} is empty or spans lines: hey cannot send it")


def _command(
    binary: str, spec: RequestSpec, concurrency: int, n_requests: int | None, duration_s: float | None, deadline: float
) -> list[str]:
    # -t: hey's own per-request timeout (whole seconds) never cuts a request before our deadline.
    cmd = [binary, "-o", "csv", "-c", str(concurrency), "-m", spec.method.upper(), "-t", str(math.ceil(deadline))]
    cmd += ["-n", str(n_requests)] if duration_s is None else ["-z", f"{round(duration_s * 1000)}ms"]
    if spec.json is not None:
        cmd += ["-d", json.dumps(spec.json)]
        if not any(name.lower() == "content-type" for name in spec.headers):
            cmd += ["-T", "application/json"]
    for name, value in spec.headers.items():  # after -T: hey lets a Content-Type given with -H win
        cmd += ["-H", f"{name}: {value}"]
    return [*cmd, spec.url]


def _stderr_tail(stderr: bytes) -> str:
    # On a usage error hey prints the reason, then its whole usage text: keep the reason.
    text = stderr.decode(errors="replace").partition("\nUsage:")[0].strip()
    return text[-_STDERR_TAIL:] or "(nothing on stderr)"


def run_hey(
    spec: RequestSpec,
    *,
    concurrency: int,
    n_requests: int | None = None,
    duration_s: float | None = None,
    timeout_s: float = 60,
) -> LoadResult:
    """Send `spec` with hey from `concurrency` closed-loop workers: `n_requests` requests
    (at least `concurrency`, hey's rule), or as many as fit in `duration_s`.

    `timeout_s` bounds the run (beyond `duration_s` when given): hey is killed then and
    BenchError raised, as it is when hey is missing, exits non-zero, or prints something
    that is not its CSV. With `duration_s`, requests that got no response cannot be
    counted (hey's CSV leaves them out).

    The body (`spec.json`) and every header, Authorization included, are on hey's command
    line, so any user can read them in the process list while it runs: pass only a dummy
    key, like the bundled upstream's, never a real one.
    """
    _check_arguments(spec, concurrency, n_requests, duration_s, timeout_s)
    binary = hey_path()
    if binary is None:
        raise BenchError(f"hey is not installed (not on PATH): {INSTALL_HINT}")
    deadline = timeout_s + (duration_s or 0.0)
    proc = subprocess.Popen(
        _command(binary, spec, concurrency, n_requests, duration_s, deadline),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=die_with_parent,  # prctl only: safe before exec
    )
    try:
        stdout, stderr = proc.communicate(timeout=deadline)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, stderr = proc.communicate()
        raise BenchError(f"hey did not finish within {deadline:g} s and was killed: {_stderr_tail(stderr)}") from None
    except BaseException:  # e.g. Ctrl-C: never leave hey running
        proc.kill()
        proc.wait()
        raise
    if proc.returncode != 0:
        raise BenchError(f"hey exited with status {proc.returncode}: {_stderr_tail(stderr)}")
    try:
        return parse_csv(stdout.decode(errors="replace"), concurrency, n_requests)
    except BenchError as exc:
        raise BenchError(f"{exc} (hey's stderr: {_stderr_tail(stderr)})") from None
