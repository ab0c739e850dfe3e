"""Slow and idle clients on the API's Unix socket, held while the register is timed.

What a careless register or a local attacker can do without any privilege beyond the socket:
connections that never send a byte, connections that send a request head one byte every few
seconds (slowloris), and `POST /v1/sync/flush` requests with a long wait while nothing can be
delivered; from this process (`hostile_clients`) or spread over several (`hostile_peers`:
each its own peer to the daemon's per-process cap). Used by `bench/api_front.py` and the
daemon's front tests.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONNECT_TIMEOUT_S = 5.0
SLOWLORIS_HEAD = b"POST /v1/payments HTTP/1.1\r\nHost: localhost\r\nX-Slow: "
DEFAULT_DRIP_S = 2.0
PEER_READY_TIMEOUT_S = 30.0


@dataclass
class Held:
    """What was opened, and how much of it the daemon has closed by now."""

    idle: list[socket.socket] = field(default_factory=list)
    slowloris: list[socket.socket] = field(default_factory=list)
    flushes: list[socket.socket] = field(default_factory=list)
    refused: int = 0  # connects that failed (a full listen backlog answers EAGAIN at once)

    def all(self) -> list[socket.socket]:
        return [*self.idle, *self.slowloris, *self.flushes]

    def still_open(self) -> int:
        """How many the daemon has not closed (nor answered) by now."""
        return sum(1 for sock in self.all() if _open_and_silent(sock))


def _open_and_silent(sock: socket.socket) -> bool:
    timeout = sock.gettimeout()
    sock.settimeout(0)  # a peek that never waits
    try:
        sock.recv(1, socket.MSG_PEEK)  # an answer, or b"": closed
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.settimeout(timeout)
    return False


def _connect(path: Path) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(CONNECT_TIMEOUT_S)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        return None
    return sock


def flush_request(timeout_s: float) -> bytes:
    body = json.dumps({"timeout_s": timeout_s}).encode()
    head = (
        "POST /v1/sync/flush HTTP/1.1\r\nHost: localhost\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):
        sock.sendall(data)


@contextlib.contextmanager
def hostile_clients(
    path: Path,
    idle: int,
    slowloris: int,
    flushes: int,
    flush_timeout_s: float = 120.0,
    drip_s: float = DEFAULT_DRIP_S,
) -> Iterator[Held]:
    """Open them all, drip the slowloris bytes in a thread while the block runs, close all."""
    held = Held()
    for count, bucket in ((idle, held.idle), (slowloris, held.slowloris)):
        for _ in range(count):
            sock = _connect(path)
            if sock is None:
                held.refused += 1
            else:
                bucket.append(sock)
    for sock in held.slowloris:
        _send_quietly(sock, SLOWLORIS_HEAD)
    for _ in range(flushes):
        sock = _connect(path)
        if sock is None:
            held.refused += 1
            continue
        _send_quietly(sock, flush_request(flush_timeout_s))
        held.flushes.append(sock)
    stop = threading.Event()

    def drip() -> None:
        while not stop.wait(drip_s):
            for sock in held.slowloris:
                _send_quietly(sock, b"x")

    dripper = threading.Thread(target=drip, name="slowloris", daemon=True)
    dripper.start()
    try:
        yield held
    finally:
        stop.set()
        dripper.join(drip_s + 1)
        for sock in held.all():
            sock.close()


@dataclass
class PeersTally:
    """Filled in when `hostile_peers` ends."""

    failed_connects: int = 0
    open_at_end: int = 0


def _share(total: int, peers: int, index: int) -> int:
    whole, rest = divmod(total, peers)
    return whole + (index < rest)


def _peer(path: Path, counts: tuple[int, int, int], timing: tuple[float, float], pipe: Any) -> None:
    """One hostile process: hold its share until told to stop, then say what is left."""
    flush_timeout_s, drip_s = timing
    with hostile_clients(path, *counts, flush_timeout_s, drip_s) as held:
        pipe.send("ready")
        pipe.recv()
        pipe.send((held.refused, held.still_open()))


@contextlib.contextmanager
def hostile_peers(
    path: Path,
    peers: int,
    idle: int,
    slowloris: int,
    flushes: int,
    flush_timeout_s: float = 120.0,
    drip_s: float = DEFAULT_DRIP_S,
) -> Iterator[PeersTally]:
    """The same clients spread over `peers` processes (each its own pid to `SO_PEERCRED`)."""
    context = multiprocessing.get_context("fork")
    tally = PeersTally()
    children = []
    for index in range(peers):
        counts = tuple(_share(total, peers, index) for total in (idle, slowloris, flushes))
        ours, theirs = context.Pipe()
        process = context.Process(
            target=_peer, args=(path, counts, (flush_timeout_s, drip_s), theirs), daemon=True
        )
        process.start()
        children.append((process, ours))
    try:
        for _, pipe in children:
            if not pipe.poll(PEER_READY_TIMEOUT_S):
                raise RuntimeError("a hostile peer did not open its connections in time")
            pipe.recv()
        yield tally
    finally:
        for process, pipe in children:
            with contextlib.suppress(OSError, EOFError):
                pipe.send("stop")
                if pipe.poll(PEER_READY_TIMEOUT_S):
                    failed, still_open = pipe.recv()
                    tally.failed_connects += failed
                    tally.open_at_end += still_open
            process.join(PEER_READY_TIMEOUT_S)
            if process.is_alive():
                process.kill()
