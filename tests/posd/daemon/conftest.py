"""Fixtures for the daemon tests: the card-reader simulator, a bus routed to SQS behind the
fault proxy, and `posd run` subprocesses (one shared by the tests that do not need their own)."""

from __future__ import annotations

import grp
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cloud.tables import TableNames, create_tables
from demo.backend import QueueRoute, route_bus_to_queue
from demo.localaws.emulator import LocalAws
from drivers.card.simulator import CardReaderSimulator
from tests.posd.daemon.harness import Daemon, write_config
from tests.sync.faultproxy import FaultProxy

SOURCE = "posd.daemon-test"


@pytest.fixture(scope="module")
def module_route(local_aws: LocalAws) -> QueueRoute:
    return route_bus_to_queue(
        local_aws.client("events"), local_aws.client("sqs"), f"d-{uuid.uuid4().hex[:10]}", SOURCE
    )


@pytest.fixture(scope="module")
def module_proxy(local_aws: LocalAws) -> Iterator[FaultProxy]:
    proxy = FaultProxy(local_aws.endpoint_url)
    yield proxy
    proxy.down()


@pytest.fixture(scope="module")
def module_reader() -> Iterator[CardReaderSimulator]:
    with CardReaderSimulator() as sim:
        yield sim


DaemonFactory = Callable[..., Daemon]


@pytest.fixture(scope="module")
def module_tables(local_aws: LocalAws) -> TableNames:
    """The cloud consumer's tables (its own definition), for the proven watermark the
    daemons read."""
    names = TableNames.prefixed(f"d-{uuid.uuid4().hex[:8]}")
    create_tables(local_aws.client("dynamodb"), names)
    return names


def daemon_factory(
    directory: Path,
    reader: CardReaderSimulator,
    proxy: FaultProxy,
    route: QueueRoute,
    watermark_table: str | None = None,
) -> tuple[DaemonFactory, list[Daemon]]:
    started: list[Daemon] = []

    def make(start: bool = True, **options: Any) -> Daemon:
        config = write_config(
            directory,
            card_port=reader.port,
            events_url=proxy.url,
            bus_name=route.bus_name,
            source=SOURCE,
            watermark_table=watermark_table,
            **options,
        )
        daemon = Daemon(config)
        started.append(daemon)
        return daemon.start() if start else daemon

    return make, started


@pytest.fixture(scope="module")
def shared_daemon(
    tmp_path_factory: pytest.TempPathFactory,
    module_reader: CardReaderSimulator,
    module_proxy: FaultProxy,
    module_route: QueueRoute,
    module_tables: TableNames,
) -> Iterator[Daemon]:
    """One daemon for the tests that only need a running lane (they clean up after themselves)."""
    make, started = daemon_factory(
        tmp_path_factory.mktemp("shared"),
        module_reader,
        module_proxy,
        module_route,
        module_tables.watermarks,
    )
    daemon = make(socket_group=grp.getgrgid(os.getgid()).gr_name)
    yield daemon
    for each in started:
        if each.proc is not None and each.proc.poll() is None:
            each.stop()


@pytest.fixture
def reader(module_reader: CardReaderSimulator) -> Iterator[CardReaderSimulator]:
    """The shared simulator, left as found: presenting cards at once."""
    module_reader.clear_faults()
    yield module_reader
    module_reader.clear_faults()
    if not module_reader.plugged:
        module_reader.replug()


@pytest.fixture
def own_reader() -> Iterator[CardReaderSimulator]:
    """A card reader for a test's own daemon (a pty has room for one host)."""
    with CardReaderSimulator() as sim:
        yield sim


@pytest.fixture
def own_proxy(local_aws: LocalAws) -> Iterator[FaultProxy]:
    proxy = FaultProxy(local_aws.endpoint_url)
    yield proxy
    proxy.down()


@pytest.fixture
def make_daemon(
    tmp_path: Path,
    own_reader: CardReaderSimulator,
    own_proxy: FaultProxy,
    module_route: QueueRoute,
) -> Iterator[DaemonFactory]:
    """A daemon of the test's own (its own state dir, reader and proxy), killed at the end."""
    make, started = daemon_factory(tmp_path, own_reader, own_proxy, module_route)
    yield make
    for daemon in started:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.kill()
