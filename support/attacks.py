"""What an outsider sends a service over a raw socket, and what came back.

An HTTP client library is polite: it sends whole headers at once, never stalls a body,
and never hangs up half-way on purpose. An attacker (or a broken proxy) does all three,
so notebook 07 shows the template's limits with raw sockets, on loopback only:

- `exchange`: send bytes, read until the server answers and closes, or a bound runs out;
- `request_bytes`: a well-formed HTTP/1.1 request, as bytes, with any path and headers;
- `huge_header`: a request whose one header is `size` bytes long;
- `slow_body`: a request whose body trickles in, a few bytes at a time;
- `slow_headers`: a request whose headers trickle in (slowloris), never finished;
- `idle_close_s`: how long the server keeps a connection open while the client sends nothing;
- `hang_up`: send a request, then close the socket before the answer comes;
- `held_connections`: many silent connections, held open for a while.

Every function is bounded in time: it returns what it saw when its bound runs out.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Answer",
    "exchange",
    "hang_up",
    "held_connections",
    "huge_header",
    "idle_close_s",
    "request_bytes",
    "slow_body",
    "slow_headers",
]


@dataclass(frozen=True)
class Answer:
    """What the server did with what was sent."""

    status: int | None  # the status code of the first response line; None if there was none
    closed: bool  # the server closed the connection (EOF or reset) within the bound
    elapsed_s: float  # from the first byte sent to the answer (or to the bound)
    head: str  # the first response line and headers, as text
    body: bytes

    def header(self, name: str) -> str | None:
        """A response header's value (case-insensitive), or None."""
        for line in self.head.split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None

    def json(self) -> Any:
        return json.loads(self.body)


def request_bytes(
    method: str,
    path: str,
    *,
    host: str = "127.0.0.1",
    headers: Mapping[str, str] | None = None,
    body: bytes | Any = b"",
) -> bytes:
    """A well-formed HTTP/1.1 request. A body that is not bytes is sent as JSON. The path is
    sent exactly as given (percent-encoding, case, ``..``): that is the point."""
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(payload)}"]
    if not isinstance(body, bytes):
        lines.append("Content-Type: application/json")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def huge_header(path: str, size: int, *, host: str = "127.0.0.1") -> bytes:
    """A GET whose ``X-Padding`` header is `size` bytes long."""
    return request_bytes("GET", path, host=host, headers={"X-Padding": "a" * size})


def _parse(data: bytes) -> tuple[int | None, str, bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    text = head.decode("latin-1")
    parts = text.split(" ", 2)
    status = int(parts[1]) if len(parts) >= 2 and parts[0].startswith("HTTP/") and parts[1].isdigit() else None
    return status, text, body


def _read_answer(sock: socket.socket, started: float, bound_s: float) -> Answer:
    """Read until the server closes, a whole response (by Content-Length) has come, or the bound."""
    data, closed = b"", False
    while (left := bound_s - (time.perf_counter() - started)) > 0:
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionError:
            closed = True
            break
        if not chunk:
            closed = True
            break
        data += chunk
        status, head, body = _parse(data)
        length = next((v for k, v in _headers(head) if k == "content-length"), None)
        if status is not None and length is not None and len(body) >= int(length):
            break
    status, head, body = _parse(data)
    return Answer(status, closed, time.perf_counter() - started, head, body)


def _headers(head: str) -> list[tuple[str, str]]:
    pairs = (line.partition(":") for line in head.split("\r\n")[1:])
    return [(k.strip().lower(), v.strip()) for k, _, v in pairs]


def exchange(host: str, port: int, payload: bytes, *, bound_s: float = 5.0) -> Answer:
    """Send `payload` at once and read the answer, for at most `bound_s` seconds."""
    with socket.create_connection((host, port), timeout=bound_s) as sock:
        started = time.perf_counter()
        try:
            sock.sendall(payload)
        except ConnectionError:  # the server may close while a huge payload is still going out
            return Answer(None, True, time.perf_counter() - started, "", b"")
        return _read_answer(sock, started, bound_s)


def slow_body(
    host: str,
    port: int,
    path: str,
    body: bytes,
    *,
    headers: Mapping[str, str] | None = None,
    bytes_per_send: int = 1,
    delay_s: float = 0.5,
    bound_s: float = 10.0,
) -> Answer:
    """Send the headers at once, then the body `bytes_per_send` bytes every `delay_s`,
    reading the answer as soon as the server gives one (or closes)."""
    request = request_bytes("POST", path, host=host, headers=headers, body=body)
    head = request[: len(request) - len(body)]
    with socket.create_connection((host, port), timeout=bound_s) as sock:
        started = time.perf_counter()
        sock.sendall(head)
        for i in range(0, len(body), bytes_per_send):
            sock.settimeout(delay_s)
            try:  # an early answer ends the trickle
                early = sock.recv(65536, socket.MSG_PEEK)
            except TimeoutError:
                early = None
            except ConnectionError:
                return Answer(None, True, time.perf_counter() - started, "", b"")
            if early is not None or time.perf_counter() - started > bound_s:
                break
            try:
                sock.sendall(body[i : i + bytes_per_send])
            except ConnectionError:
                break
        return _read_answer(sock, started, bound_s)


def slow_headers(
    host: str, port: int, *, bytes_per_send: int = 1, delay_s: float = 0.2, bound_s: float = 10.0
) -> Answer:
    """Send a request's headers `bytes_per_send` bytes every `delay_s` and never end them
    (a header line after another, as slowloris does), until the server answers or closes,
    or `bound_s` runs out. The answer's `elapsed_s` is how long the server let it go on."""
    head = f"GET /health HTTP/1.1\r\nHost: {host}\r\n".encode()
    with socket.create_connection((host, port), timeout=bound_s) as sock:
        started = time.perf_counter()
        sent = 0
        while time.perf_counter() - started < bound_s:
            piece = head[sent : sent + bytes_per_send] if sent < len(head) else b"X-a: b\r\n"[:bytes_per_send]
            try:
                sock.sendall(piece)
            except ConnectionError:
                break
            sent += len(piece)
            sock.settimeout(delay_s)
            try:  # the server's answer (or its close) ends the trickle
                if sock.recv(65536, socket.MSG_PEEK) is not None:
                    break
            except TimeoutError:
                continue
            except ConnectionError:
                break
        return _read_answer(sock, started, bound_s + 0.5)  # half a second more for an answer at the bound


def idle_close_s(host: str, port: int, *, first: bytes | None = None, bound_s: float = 30.0) -> float | None:
    """Seconds a connection stays open while the client sends nothing, before the server
    closes it; None if it is still open after `bound_s`. With `first`, that request is sent
    and answered first, and the idle time counts from the answer (a keep-alive connection).

    uvicorn arms its keep-alive timer only when a response completes
    (uvicorn/protocols/http/h11_impl.py, ``H11Protocol.on_response_complete``): a
    connection that never sends a byte is never timed out by uvicorn itself.
    """
    with socket.create_connection((host, port), timeout=bound_s) as sock:
        if first is not None:
            sock.sendall(first)
            answered = _read_answer(sock, time.perf_counter(), bound_s)
            if answered.closed:
                return 0.0
        answer = _read_answer(sock, time.perf_counter(), bound_s)
    return answer.elapsed_s if answer.closed else None


def hang_up(host: str, port: int, payload: bytes, *, after_s: float) -> None:
    """Send a whole request, wait `after_s`, then close the socket without reading the answer."""
    with socket.create_connection((host, port), timeout=after_s + 5) as sock:
        sock.sendall(payload)
        time.sleep(after_s)


@contextlib.contextmanager
def held_connections(host: str, port: int, n: int) -> Iterator[list[socket.socket]]:
    """`n` connections opened and kept open, silent, for the duration of the block."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(socket.create_connection((host, port), timeout=5)) for _ in range(n)]
