"""Shared setup for the channel delivery tests: a loopback server per test, a seeded store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import TypeVar

from sqlalchemy.engine import Engine

from riskwatch.config import Settings
from tests.test_dispatch import migrated, seed_areas

Server = TypeVar("Server")


def loopback(server: AbstractContextManager[Server]) -> Iterator[Server]:
    """Run a loopback test server for the length of a fixture (`yield from loopback(...)`)."""
    with server as running:
        yield running


def seeded(settings: Settings) -> Engine:
    """The migrated test database of `settings`, with the test areas (XD07 and its districts)."""
    engine = migrated(settings)
    seed_areas(engine)
    return engine
