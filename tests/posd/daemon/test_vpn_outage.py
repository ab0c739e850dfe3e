"""A real VPN outage: the AWS emulator runs in a network namespace this test creates, reached
over a veth pair, and the link goes dark the way a Site-to-Site tunnel does (packets vanish:
connections hang until their timeouts, requests in flight never answer). Both daemons run:
the delivery daemon's traffic crosses the tunnel, the capture daemon's never does. Payments
flow all along: capture never waits on the link, delivery resumes on its own (the same
process, never restarted), nothing is lost.

Going dark is the namespace's end of the veth set down with permanent neighbour entries on
both ends, so nothing answers and nothing is refused (no ARP failure, no ICMP). Needs root and
`ip` (iproute2); skips with the reason otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from demo.backend import QueueRoute, route_bus_to_queue
from demo.localaws.emulator import EMULATOR_CREDENTIALS, EMULATOR_REGION
from drivers.card.simulator import CardReaderSimulator
from tests.posd.daemon.harness import REPO, Daemon, wait_for, write_config
from tests.sync.conftest import receive_all

IP = shutil.which("ip")
pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="creating a network namespace needs root"),
    pytest.mark.skipif(IP is None, reason="`ip` (iproute2) is not installed"),
]

EMULATOR_PORT = 4566
SUBNET = 10_231  # 10.231.N.0/30 with N from the pid: parallel runs do not collide
READY_TIMEOUT_S = 30.0
PAY_EVERY_S = 0.2
# Capture never touches the link; a hung connection would take 30 s and more.
CAPTURE_BOUND_S = 5.0
DRAIN_TIMEOUT_S = 90.0
SOURCE = "posd.vpn-test"
EMULATOR = """
import sys, time
from demo.localaws.emulator import LocalAws
with LocalAws(host="0.0.0.0", port=int(sys.argv[1])):
    print("ready", flush=True)
    sys.stdin.read()
"""


def ip(*args: str, namespace: str | None = None) -> str:
    assert IP is not None
    command = [IP, *(["-n", namespace] if namespace else []), *args]
    return subprocess.run(command, check=True, capture_output=True, text=True, timeout=10).stdout


@dataclass
class Tunnel:
    namespace: str
    host_end: str
    far_end: str
    endpoint: str

    def down(self) -> None:
        ip("link", "set", self.far_end, "down", namespace=self.namespace)

    def up(self) -> None:
        ip("link", "set", self.far_end, "up", namespace=self.namespace)


def mac_of(device: str, namespace: str | None = None) -> str:
    return ip("-br", "link", "show", device, namespace=namespace).split()[2]


@pytest.fixture
def tunnel() -> Iterator[Tunnel]:
    tag = os.getpid() % 100_000
    octet = tag % 250 + 1
    namespace, host_end, far_end = f"posd-vpn-{tag}", f"pv{tag}a", f"pv{tag}b"
    host_ip, far_ip = f"10.{SUBNET % 1000}.{octet}.1", f"10.{SUBNET % 1000}.{octet}.2"
    ip("netns", "add", namespace)
    emulator: subprocess.Popen[str] | None = None
    try:
        ip("link", "add", host_end, "type", "veth", "peer", "name", far_end)
        ip("link", "set", far_end, "netns", namespace)
        ip("addr", "add", f"{host_ip}/30", "dev", host_end)
        ip("addr", "add", f"{far_ip}/30", "dev", far_end, namespace=namespace)
        for device, where in ((host_end, None), (far_end, namespace), ("lo", namespace)):
            ip("link", "set", device, "up", namespace=where)
        far_mac, host_mac = mac_of(far_end, namespace), mac_of(host_end)
        ip("neigh", "replace", far_ip, "lladdr", far_mac, "dev", host_end, "nud", "permanent")
        ip(
            *("neigh", "replace", host_ip, "lladdr", host_mac, "dev", far_end),
            *("nud", "permanent"),
            namespace=namespace,
        )
        assert IP is not None
        emulator = subprocess.Popen(
            [IP, "netns", "exec", namespace, sys.executable, "-c", EMULATOR, str(EMULATOR_PORT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        assert emulator.stdout is not None
        assert emulator.stdout.readline().strip() == "ready"
        yield Tunnel(namespace, host_end, far_end, f"http://{far_ip}:{EMULATOR_PORT}")
    finally:
        if emulator is not None:
            emulator.kill()
            emulator.wait(10)
        subprocess.run([IP or "ip", "link", "del", host_end], capture_output=True, check=False)
        subprocess.run([IP or "ip", "netns", "del", namespace], capture_output=True, check=False)


def client(endpoint: str, service: str) -> Any:
    session = boto3.Session(
        aws_access_key_id=EMULATOR_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=EMULATOR_CREDENTIALS["aws_secret_access_key"],
        region_name=EMULATOR_REGION,
    )
    return session.client(service, endpoint_url=endpoint)  # type: ignore[call-overload]


@dataclass
class Till:
    """Pays every PAY_EVERY_S until stopped; keeps each answer and how long it took."""

    daemon: Daemon
    answers: list[tuple[float, float, int, dict[str, Any]]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        index = 0
        while not self.stop.is_set():
            index += 1
            started = time.monotonic()
            status, answer = self.daemon.pay(f"vpn-{index}", timeout_s=10)
            self.answers.append((started, time.monotonic() - started, status, answer))
            time.sleep(max(0.0, PAY_EVERY_S - (time.monotonic() - started)))

    def latencies(self, since: float, until: float) -> list[float]:
        return [took for at, took, _, _ in self.answers if since <= at < until]


def test_a_dark_tunnel_never_slows_capture_and_delivery_resumes_by_itself(
    tunnel: Tunnel, tmp_path: Any, own_reader: CardReaderSimulator
) -> None:
    bus = f"vpn-{uuid.uuid4().hex[:10]}"
    route: QueueRoute = route_bus_to_queue(
        client(tunnel.endpoint, "events"), client(tunnel.endpoint, "sqs"), bus, SOURCE
    )
    config = write_config(
        tmp_path, card_port=own_reader.port, events_url=tunnel.endpoint, bus_name=bus, source=SOURCE
    )
    daemon = Daemon(config).start()
    delivery_pid = daemon.sync_proc.pid if daemon.sync_proc is not None else None
    till = Till(daemon)
    paying = threading.Thread(target=till.run, daemon=True)
    try:
        paying.start()
        time.sleep(3)
        outage_started = time.monotonic()
        tunnel.down()
        time.sleep(6)
        seen = daemon.call("GET", "/v1/status")[1]["link"]["state"]  # the outage is real
        tunnel.up()
        time.sleep(2)
        for _ in range(4):  # a flapping tunnel
            tunnel.down()
            time.sleep(1.0)
            tunnel.up()
            time.sleep(1.0)
        outage_ended = time.monotonic()
        time.sleep(1)
        till.stop.set()
        paying.join(30)

        def drained() -> bool:
            return bool(daemon.call("GET", "/v1/status")[1]["pending"]["count"] == 0)

        wait_for(drained, DRAIN_TIMEOUT_S, interval=0.5)  # no flush: it resumes on its own
        assert daemon.delivery.running and daemon.sync_proc is not None
        assert daemon.sync_proc.pid == delivery_pid  # delivery came through, not restarted
        assert daemon.stop() == 0
        assert daemon.delivery_code == 0, daemon.output()
    finally:
        till.stop.set()
        daemon.kill()

    assert seen == "offline"
    statuses = {status for _, _, status, _ in till.answers}
    assert statuses == {201}, statuses
    during = till.latencies(outage_started, outage_ended)
    before = till.latencies(0, outage_started)
    print(
        f"capture seconds before the outage: max {max(before):.3f}; "
        f"during: max {max(during):.3f} over {len(during)} payments"
    )
    assert during and max(during) < CAPTURE_BOUND_S
    acknowledged = {answer["event_id"] for _, _, _, answer in till.answers}
    received = receive_all(client(tunnel.endpoint, "sqs"), route.queue_url, len(acknowledged))
    assert acknowledged <= {event["detail"]["event_id"] for event in received}  # lost = 0
