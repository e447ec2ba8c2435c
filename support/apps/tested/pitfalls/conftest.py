"""The pitfalls' one fixture: an upstream shared by a test module."""

from collections.abc import Iterator

import pytest

from support.upstream import RunningUpstream, upstream_in_thread

KEY = "sk-test-not-a-real-key"


@pytest.fixture(scope="module")
def module_upstream() -> Iterator[RunningUpstream]:
    with upstream_in_thread(api_key=KEY, latency=0.01) as running:
        yield running
