"""A real nginx in front of a service: a config in a temporary folder, a process, a clean stop.

`nginx_in_front` writes an nginx config proxying to one HTTP service, starts Debian's
nginx on a free loopback port (unprivileged: as root it drops to ``nobody`` for the whole
process, master included), waits until it accepts connections, and on exit stops it
gracefully (SIGQUIT: nginx finishes the requests in flight) within a bound, then kills
it. The settings name nginx's own directives, so the config the notebook shows is the
one that ran; every value left out keeps nginx's default (`DEFAULTS` lists them, from
the nginx documentation of ``ngx_http_proxy_module`` and ``ngx_http_core_module``).

When nginx is not installed, `nginx_path` returns None and `NginxMissing` says how to
install it: callers skip, they never pretend.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from urllib.parse import urlsplit

__all__ = [
    "DEFAULTS",
    "RECOMMENDED",
    "NginxMissing",
    "ProxySettings",
    "RunningProxy",
    "nginx_in_front",
    "nginx_path",
    "render",
]

# nginx 1.22's defaults for the directives `ProxySettings` can set.
DEFAULTS = {
    "proxy_buffering": "on",
    "proxy_read_timeout": "60s",
    "proxy_send_timeout": "60s",
    "client_header_timeout": "60s",
    "client_body_timeout": "60s",
    "large_client_header_buffers": "4 8k",
    "client_max_body_size": "1m",
    "gzip": "off",
    "gzip_types": "text/html",  # compressed when gzip is on; "*" for every type
}


class NginxMissing(RuntimeError):
    """nginx is not installed here."""

    def __init__(self) -> None:
        super().__init__(
            "nginx is not installed: `apt-get install nginx` (Debian's package; `make test` does it as root)"
        )


@dataclass(frozen=True)
class ProxySettings:
    """nginx directives for the proxy; None keeps nginx's default (see `DEFAULTS`)."""

    proxy_buffering: str | None = None  # "on" | "off"
    proxy_read_timeout: str | None = None  # e.g. "2s": the longest silence between two reads
    proxy_send_timeout: str | None = None
    client_header_timeout: str | None = None  # a client that sends its headers slower is cut (408)
    client_body_timeout: str | None = None
    large_client_header_buffers: str | None = None  # "4 8k": a longer header line gets 400
    client_max_body_size: str | None = None  # a larger body gets 413
    gzip: str | None = None  # "on" compresses the `gzip_types` for clients that accept it
    gzip_types: str | None = None  # e.g. "text/event-stream", or "*"
    limit_conn: int | None = None  # connections per client address; more get 503

    def directives(self) -> dict[str, str]:
        """The directives set here, in the order they are declared."""
        chosen = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "limit_conn"}
        return {name: value for name, value in chosen.items() if value is not None}


# What the README puts in front of the hardened service (notebook 10 runs it): nginx's
# defaults pass events as they come, so these only bound what the service cannot bound
# itself before a request exists, and keep a thinking model's stream open.
RECOMMENDED = ProxySettings(
    proxy_read_timeout="75s",  # more than SERVICE_STREAM_HEARTBEAT_S (15 s): the pings keep a stream open
    client_header_timeout="10s",  # a client slower to send its headers gets 408
    client_body_timeout="10s",  # the longest silence between two reads of a body (408)
    large_client_header_buffers="4 8k",  # a longer header line gets 400 (nginx's default, said out loud)
    client_max_body_size="64k",  # SERVICE_MAX_BODY_BYTES: a larger body gets 413 at the proxy
    limit_conn=64,  # requests in flight per client address; more get 503
)


@dataclass(frozen=True)
class RunningProxy:
    """nginx accepting connections at `base_url`, proxying to `target`."""

    base_url: str
    target: str
    config: str
    folder: Path

    def error_log(self) -> str:
        return _read(self.folder / "error.log")

    def access_log(self, *, at_least: int = 0, timeout_s: float = 5.0) -> list[str]:
        """The access log's lines, once it holds `at_least` of them. nginx writes a request's
        line when it has finished the request, a moment after its client read the last byte:
        reading at once can miss the newest. TimeoutError if they are not all there in time."""
        deadline = time.monotonic() + timeout_s
        while len(lines := _read(self.folder / "access.log").splitlines()) < at_least:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nginx logged {len(lines)} requests, not {at_least}, within {timeout_s} s")
            time.sleep(0.02)
        return lines


def nginx_path() -> str | None:
    """Debian's nginx, if installed (``/usr/sbin`` is not on every PATH)."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def render(target: str, port: int, folder: Path, settings: ProxySettings = ProxySettings()) -> str:
    """The whole nginx.conf for proxying 127.0.0.1:`port` to `target` (``http://host:port``)."""
    upstream = urlsplit(target)
    if upstream.scheme != "http" or not upstream.hostname or not upstream.port:
        raise ValueError(f"target must be http://host:port, got {target!r}")
    server = "\n".join(f"        {name} {value};" for name, value in settings.directives().items())
    zone = "    limit_conn_zone $binary_remote_addr zone=per_client:1m;\n" if settings.limit_conn else ""
    limit = f"        limit_conn per_client {settings.limit_conn};\n" if settings.limit_conn else ""
    return f"""worker_processes 1;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/error.log info;
events {{
    worker_connections 1024;
}}
http {{
    access_log {folder}/access.log;
    client_body_temp_path {folder}/client_body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
{zone}    server {{
        listen 127.0.0.1:{port};
{server}
{limit}        location / {{
            proxy_pass http://{upstream.hostname}:{upstream.port};
            proxy_http_version 1.1;          # keep-alive to the service, and chunked streams
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
"""


@contextlib.contextmanager
def nginx_in_front(
    target: str,
    settings: ProxySettings = ProxySettings(),
    *,
    start_timeout_s: float = 10.0,
    stop_timeout_s: float = 5.0,
) -> Iterator[RunningProxy]:
    """Run nginx proxying a free loopback port to `target` until the block ends."""
    binary = nginx_path()
    if binary is None:
        raise NginxMissing()
    with tempfile.TemporaryDirectory(prefix="nginx-") as name:
        folder = Path(name)
        port = _free_port()
        config = render(target, port, folder, settings)
        (folder / "nginx.conf").write_text(config)
        user = _unprivileged(folder)
        process = subprocess.Popen(
            [binary, "-p", str(folder), "-c", str(folder / "nginx.conf"), "-e", str(folder / "error.log")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            user=user,
            start_new_session=True,  # a Ctrl-C in the caller's terminal does not reach it first
        )
        try:
            _wait_listening(process, port, folder, start_timeout_s)
            yield RunningProxy(f"http://127.0.0.1:{port}", target, config, folder)
        finally:
            _stop(process, stop_timeout_s)


def _unprivileged(folder: Path) -> str | None:
    """As root, run nginx as ``nobody`` (owning its folder); otherwise as the caller."""
    if os.geteuid() != 0:
        return None
    nobody = pwd.getpwnam("nobody")
    for path in [folder, *folder.rglob("*")]:
        os.chown(path, nobody.pw_uid, nobody.pw_gid)
    return "nobody"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_listening(process: subprocess.Popen[bytes], port: int, folder: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise RuntimeError(f"nginx exited ({process.returncode}): {stderr.strip() or _read(folder / 'error.log')}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"nginx did not listen on port {port} within {timeout_s} s: {_read(folder / 'error.log')}")


def _stop(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """SIGQUIT (graceful: requests in flight finish), then SIGKILL the group after `timeout_s`."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGQUIT)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=timeout_s)
    if process.stderr:
        process.stderr.close()


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""
