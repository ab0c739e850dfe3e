"""The lane under test: moto, two fault proxies (EventBridge, KMS), the card-reader simulator
and the lane's two daemons as subprocesses (`posd run`, capture; `posd sync run`, delivery,
through the test harness's `Daemon`): both or either can be killed, stopped and restarted.

The daemon uses KMS data keys with the offline RSA key as fallback, so a KMS outage across a
restart puts it on the offline path; KMS and EventBridge are each reached through their own
`FaultProxy`, so either can be broken without touching the other.

With `api="v2"` (`POSD_CHAOS_API=v2`) the daemon delivers through EventBridge v2: the events
proxy stands in front of the local v2 endpoint (demo/localaws/eventbridge_v2.py), which forwards
to the same queue; the bus then deduplicates the engine's resends.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from demo.backend import QueueRoute, route_bus_to_queue
from demo.devconfig import DevConfig, serial_card_reader, simulated_palm
from demo.localaws.emulator import LocalAws
from demo.localaws.eventbridge_v2 import EventBridgeV2Endpoint, route_v2_bus_to_queue
from drivers.card.simulator import CardReaderSimulator
from tests.chaos.register import CURRENCIES
from tests.posd.daemon.harness import FAST_SYNC, Daemon
from tests.sync.faultproxy import FaultProxy
from tests.terminal_identity import lane_identity

STORE_ID = "store-chaos"
TERMINAL_ID = "lane-chaos"
SOURCE = "posd.chaos"
PALM_CREDENTIAL = "tok-chaos-shopper-0001"
ROTATE_AFTER_RECORDS = 20  # keys change often: rotation and the offline path get exercised
CHECKPOINT_EVERY_RECORDS = 10  # many checkpoints: each one proved after the run
NORMAL_MIN_FREE_BYTES = 1024 * 1024
FULL_MIN_FREE_BYTES = 2**62  # more than any disk has free: every append is journal_full
API_ENV = "POSD_CHAOS_API"
APIS = ("v1", "v2")


def chaos_config(
    directory: Path,
    *,
    card_port: str,
    events_url: str,
    kms_url: str,
    kms_key: str,
    offline_key: str,
    bus_name: str,
    min_free_bytes: int,
    palm_flag: Path,
    v2_bus_arn: str | None = None,
) -> Path:
    v2 = {"api": "v2", "event_bus_arn": v2_bus_arn} if v2_bus_arn else {}
    return DevConfig(
        store_id=STORE_ID,
        terminal_id=TERMINAL_ID,
        mode="production",
        api={"socket": "run/api.sock", "socket_group": ""},
        aws={
            "region": "us-east-1",
            "kms_endpoint_url": kms_url,
            "events_endpoint_url": events_url,
            "connect_timeout_seconds": 0.5,
            "read_timeout_seconds": 1.0,
        },
        keys={
            "provider": "kms",
            "kms_key_id": kms_key,
            "offline_key_id": offline_key,
            "rotate_after_records": ROTATE_AFTER_RECORDS,
        },
        journal={
            "min_free_bytes": min_free_bytes,
            "checkpoint_every_records": CHECKPOINT_EVERY_RECORDS,
        },
        sync={"event_bus_name": bus_name, "source": SOURCE, **v2, **FAST_SYNC},
        payments={"currencies": list(CURRENCIES)},
        identity=lane_identity(directory / "pki", STORE_ID, TERMINAL_ID),
        devices={
            "card_reader": serial_card_reader(card_port),
            "palm_scanner": simulated_palm(
                {"shopper": PALM_CREDENTIAL},
                present="shopper",
                scan_time_s=0.01,
                unplugged_while=palm_flag,
            ),
        },
    ).write(directory / "posd.toml")


class Rig:
    """Everything the soak breaks, built in `directory`. A context manager."""

    def __init__(self, directory: Path, api: str = "v1") -> None:
        if api not in APIS:
            raise ValueError(f"api must be one of {APIS}, got {api!r}")
        self.dir = directory
        self.api = api
        self.aws = LocalAws()
        self.v2: EventBridgeV2Endpoint | None = None
        self.v2_bus_arn: str | None = None
        self.events_proxy: FaultProxy | None = None
        self.kms_proxy: FaultProxy | None = None
        self.reader = CardReaderSimulator()
        self.daemon: Daemon | None = None
        self.route: QueueRoute | None = None
        self.kms_key = ""
        self.offline_key = ""
        self.delivery_exit_codes: list[int] = []

    def __enter__(self) -> Self:
        self.aws.__enter__()
        kms = self.aws.client("kms")
        self.kms_key = kms.create_key(Description="posd chaos journal key")["KeyMetadata"]["Arn"]
        self.offline_key = kms.create_key(
            Description="posd chaos offline key", KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT"
        )["KeyMetadata"]["Arn"]
        bus = f"chaos-{uuid.uuid4().hex[:10]}"
        if self.api == "v2":
            self.v2 = EventBridgeV2Endpoint().start()
            self.route, self.v2_bus_arn = route_v2_bus_to_queue(
                self.v2, self.aws.client("sqs"), bus
            )
            self.events_proxy = FaultProxy(self.v2.endpoint_url)
        else:
            self.route = route_bus_to_queue(
                self.aws.client("events"), self.aws.client("sqs"), bus, SOURCE
            )
            self.events_proxy = FaultProxy(self.aws.endpoint_url)
        self.kms_proxy = FaultProxy(self.aws.endpoint_url)
        self.reader.start()
        self.write_config(NORMAL_MIN_FREE_BYTES)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.alive():
            assert self.daemon is not None
            self.daemon.kill()
        for proxy in (self.events_proxy, self.kms_proxy):
            if proxy is not None:
                proxy.down()
        self.reader.stop()
        if self.v2 is not None:
            self.v2.stop()
        self.aws.__exit__(exc_type, exc, tb)

    # -- parts ---------------------------------------------------------------------------------

    @property
    def events(self) -> FaultProxy:
        assert self.events_proxy is not None
        return self.events_proxy

    @property
    def kms(self) -> FaultProxy:
        assert self.kms_proxy is not None
        return self.kms_proxy

    @property
    def config(self) -> Path:
        return self.dir / "posd.toml"

    @property
    def state_dir(self) -> Path:
        return self.dir / "state"

    @property
    def socket(self) -> Path:
        return self.dir / "run" / "api.sock"

    @property
    def log_file(self) -> Path:
        return self.dir / "daemon.log"

    def write_config(self, min_free_bytes: int) -> None:
        assert self.route is not None
        chaos_config(
            self.dir,
            card_port=self.reader.port,
            events_url=self.events.url,
            kms_url=self.kms.url,
            kms_key=self.kms_key,
            offline_key=self.offline_key,
            bus_name=self.route.bus_name,
            min_free_bytes=min_free_bytes,
            palm_flag=self.palm_flag,
            v2_bus_arn=self.v2_bus_arn,
        )

    @property
    def palm_flag(self) -> Path:
        return self.dir / "palm-unplugged"

    def palm_unplug(self) -> None:
        self.palm_flag.touch()

    def palm_replug(self) -> None:
        self.palm_flag.unlink(missing_ok=True)

    def client(self, service: str) -> Any:
        """A boto3 client straight to moto (the backend's side: no proxy in the way)."""
        return self.aws.client(service)

    # -- the daemons -----------------------------------------------------------------------

    @property
    def delivery_log_file(self) -> Path:
        return self.dir / "delivery.log"

    def start(self) -> None:
        """Both daemons, capture first (it makes the journal)."""
        self.daemon = Daemon(self.config).start()

    def kill(self) -> None:
        """SIGKILL both: no chance to clean up."""
        assert self.daemon is not None
        self.daemon.kill()

    def kill_capture(self) -> None:
        """SIGKILL `posd run` alone: delivery goes on."""
        assert self.daemon is not None
        self.daemon.kill_capture()

    def kill_delivery(self) -> None:
        """SIGKILL `posd sync run` alone: payments go on."""
        assert self.daemon is not None
        self.daemon.kill_delivery()

    def start_capture(self) -> None:
        """Start `posd run` again next to the delivery daemon still running."""
        assert self.daemon is not None
        self.daemon.start(delivery=False)

    def start_delivery(self) -> None:
        assert self.daemon is not None
        self.daemon.start_delivery()

    def terminate(self) -> int:
        """SIGTERM both and capture's exit code (0 is the contract; delivery's is kept in
        `delivery_exit_codes`)."""
        assert self.daemon is not None
        delivering = self.delivery_alive()
        code = self.daemon.stop()
        if delivering and self.daemon.delivery_code is not None:
            self.delivery_exit_codes.append(self.daemon.delivery_code)
        return code

    def capture_alive(self) -> bool:
        return self.daemon is not None and self.daemon.capture.running

    def delivery_alive(self) -> bool:
        return self.daemon is not None and self.daemon.delivery.running

    def alive(self) -> bool:
        """Whether either daemon runs (what is left to kill at the end)."""
        return self.capture_alive() or self.delivery_alive()
