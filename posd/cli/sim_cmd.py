"""`posd sim card-reader`: run the simulated card reader on a pty until SIGINT/SIGTERM.

Prints the port path (stable across simulated unplug/replug) for `serial`-driver configs or
for `posd run` in development; the simulator presents the deck's test cards in turn.
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Mapping
from types import FrameType
from typing import Any

from posd.cli.args import add_json_argument
from posd.cli.output import emit, key_values
from posd.errors import UsageError

DEFAULT_PRESENT_AFTER_S = 0.5
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


MAX_PRESENT_AFTER_S = 3600.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("sim", help="run simulated devices")
    devices = parser.add_subparsers(dest="device", metavar="DEVICE", required=True)
    reader = devices.add_parser("card-reader", help="simulated serial card reader on a pty")
    reader.add_argument(
        "--present-after",
        type=float,
        default=DEFAULT_PRESENT_AFTER_S,
        metavar="SECONDS",
        help=f"delay between arming and presenting a card (default {DEFAULT_PRESENT_AFTER_S})",
    )
    add_json_argument(reader)
    reader.set_defaults(handler=run_card_reader)


def run_card_reader(args: argparse.Namespace) -> int:
    # Imported here: `posd --help` does not load the drivers.
    from drivers.card.deck import default_deck
    from drivers.card.simulator import CardReaderSimulator

    if not 0 <= args.present_after < MAX_PRESENT_AFTER_S:
        raise UsageError(f"--present-after must be 0 to {MAX_PRESENT_AFTER_S:g} seconds")
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    deck = default_deck()
    try:
        with CardReaderSimulator(deck) as sim:
            sim.present_after(args.present_after)
            emit(
                {
                    "device": "card-reader",
                    "port": sim.port,
                    "deck_cards": len(deck),
                    "stop": "SIGINT or SIGTERM",
                },
                args.json,
                _render,
            )
            while not stop.wait(1.0):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _render(result: Mapping[str, Any]) -> str:
    return key_values(result)
