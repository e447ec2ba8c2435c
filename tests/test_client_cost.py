"""client_cost.construction_cost: per-client time, one function's share, and every client closed."""

from __future__ import annotations

import asyncio
from typing import ClassVar

import pytest

from support.client_cost import construction_cost


def expensive_setup_for_the_test() -> int:
    total = 0
    for i in range(50_000):  # its own time, not a builtin's: what the profile attributes to it
        total += i
    return total


class Client:
    built: ClassVar[list[Client]] = []

    def __init__(self) -> None:
        expensive_setup_for_the_test()
        self.closed = False
        Client.built.append(self)

    async def close(self) -> None:
        self.closed = True


@pytest.fixture(autouse=True)
def fresh() -> None:
    Client.built = []


def test_it_times_a_batch_profiles_another_and_closes_both() -> None:
    cost = asyncio.run(construction_cost(Client, 5, hotspot="expensive_setup_for_the_test"))
    assert cost.hotspot_calls == 5  # the profiled batch only
    assert 0.5 < cost.hotspot_share <= 1.0  # nearly all of the profiled own time
    assert len(Client.built) == 10 and all(client.closed for client in Client.built)


def test_an_unknown_hotspot_has_no_share() -> None:
    cost = asyncio.run(construction_cost(Client, 2, hotspot="no_such_function_anywhere"))
    assert (cost.hotspot_calls, cost.hotspot_share) == (0, 0.0)


def test_clients_built_before_a_failure_are_closed() -> None:
    def build() -> Client:
        if len(Client.built) == 3:
            raise RuntimeError("no more")
        return Client()

    with pytest.raises(RuntimeError, match="no more"):
        asyncio.run(construction_cost(build, 5, hotspot="x"))
    assert len(Client.built) == 3 and all(client.closed for client in Client.built)


def test_an_empty_batch_is_an_error() -> None:
    with pytest.raises(ValueError, match="batch"):
        asyncio.run(construction_cost(Client, 0, hotspot="x"))
