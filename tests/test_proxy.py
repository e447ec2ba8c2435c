"""support.proxy: a real nginx in front of a service, started and stopped cleanly.

Skipped (never faked) where nginx is not installed; `make test` installs it as root.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.proxy import DEFAULTS, RECOMMENDED, NginxMissing, ProxySettings, nginx_in_front, nginx_path, render
from support.upstream import RunningUpstream, upstream_in_thread

needs_nginx = pytest.mark.skipif(nginx_path() is None, reason="nginx is not installed (apt-get install nginx)")
KEY = "sk-proxy-test"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def upstream() -> Iterator[RunningUpstream]:
    with upstream_in_thread(api_key=KEY, latency=0.01, ttft=0.01, chunk_delay=0.01, reply_tokens=8) as running:
        yield running


def test_render_names_only_the_directives_set(tmp_path: Path) -> None:
    config = render("http://127.0.0.1:8000", 9000, tmp_path, ProxySettings(proxy_buffering="off", limit_conn=2))
    assert "proxy_buffering off;" in config and "proxy_read_timeout" not in config
    assert "limit_conn per_client 2;" in config and "listen 127.0.0.1:9000;" in config
    assert "proxy_pass http://127.0.0.1:8000;" in config
    assert set(DEFAULTS) == set(ProxySettings().directives()) | set(DEFAULTS)  # every default is settable
    assert set(DEFAULTS) == {f for f in ProxySettings.__dataclass_fields__ if f != "limit_conn"}
    for bad in ("https://example.com:443", "127.0.0.1:8000", "http://127.0.0.1"):
        with pytest.raises(ValueError, match="target must be http://host:port"):
            render(bad, 9000, tmp_path)


def test_a_missing_nginx_is_said_not_faked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr("support.proxy.shutil.which", lambda *args, **kwargs: None)
    with pytest.raises(NginxMissing, match="apt-get install nginx"), nginx_in_front("http://127.0.0.1:1"):
        pass


@needs_nginx
def test_proxies_and_stops_cleanly(upstream: RunningUpstream) -> None:
    with nginx_in_front(upstream.base_url) as proxy:
        response = httpx.get(f"{proxy.base_url}/v1/models", headers=AUTH, timeout=5)
        assert response.status_code == 200 and response.headers["server"].startswith("nginx/")
        assert any('"GET /v1/models HTTP/1.1" 200' in line for line in proxy.access_log(at_least=1))
        with pytest.raises(TimeoutError, match=r"nginx logged 1 requests, not 2, within 0\.1 s"):
            proxy.access_log(at_least=2, timeout_s=0.1)
        pid = int((proxy.folder / "nginx.pid").read_text())
        if os.geteuid() == 0:  # as root it runs as nobody, master included
            status = Path(f"/proc/{pid}/status").read_text()
            uid = next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))
            assert uid != "0", status
        port = int(proxy.base_url.rsplit(":", 1)[1])
        folder = proxy.folder
    assert not folder.exists()  # its config, logs and temp files are gone
    assert not Path(f"/proc/{pid}").exists()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        pass


@needs_nginx
def test_a_config_nginx_rejects_is_reported_with_nginx_words(upstream: RunningUpstream) -> None:
    rejected = ProxySettings(proxy_buffering="sometimes")
    with pytest.raises(RuntimeError, match=r"invalid value \"sometimes\""), nginx_in_front(upstream.base_url, rejected):
        pass


@needs_nginx
def test_stop_is_bounded_with_a_stream_in_flight() -> None:
    """SIGQUIT lets requests in flight finish; a stream that never ends is killed at the bound."""
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with (
        upstream_in_thread(api_key=KEY, ttft=0.01, chunk_delay=0.5, reply_tokens=100) as slow,
        httpx.Client(timeout=10) as client,
    ):
        proxy_cm = nginx_in_front(slow.base_url, stop_timeout_s=1.0)
        proxy = proxy_cm.__enter__()
        with client.stream("POST", f"{proxy.base_url}/v1/chat/completions", json=body, headers=AUTH) as response:
            assert response.status_code == 200
            next(response.iter_raw())
            started = time.monotonic()
            proxy_cm.__exit__(None, None, None)
            stopped_in = time.monotonic() - started
    assert stopped_in < 3.0, stopped_in


def test_the_readme_block_is_the_config_notebook_10_runs(tmp_path: Path) -> None:
    """Every line of the README's nginx block is in the config `RECOMMENDED` renders (which notebook 10 runs)."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    block = readme.split("```nginx\n", 1)[1].split("```", 1)[0]
    config = render("http://127.0.0.1:8000", 8080, tmp_path, RECOMMENDED)
    lines = [line.strip() for line in block.splitlines() if line.strip() and line.strip() != "}"]
    assert len(lines) > 10
    missing = [line for line in lines if line not in {c.strip() for c in config.splitlines()}]
    assert missing == [], missing
    assert "limit_conn_zone $binary_remote_addr zone=per_client:1m;" in config and "zone=per_client:1m;" in readme
