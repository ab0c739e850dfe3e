"""The server's connections, bounded: a deadline for each request and caps on how many.

uvicorn's own timeout only covers a kept-alive connection after an answer, and any byte
received resets it: a connection that never sends anything, or sends a request head one byte
every few seconds (slowloris), stays forever. So every connection must deliver a whole
request (head and body) within `REQUEST_DEADLINE_S` of being opened or of its last answer, or
it is closed. While the app works on a request (a payment waiting for the card, a flush) the
connection is left alone.

Connections are capped overall and per peer process (its pid, from `SO_PEERCRED`). A new
connection over a cap evicts the oldest connection of the same scope that has no request in
the app (idle or still sending), so the register's next request always gets in; it is
refused only when every connection in scope has a request in the app.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any, ClassVar, Protocol

import structlog
from uvicorn.protocols.http.h11_impl import H11Protocol

log = structlog.get_logger("posd.api")

REQUEST_DEADLINE_S = 5.0
MAX_CONNECTIONS = 128
MAX_CONNECTIONS_PER_PEER = 32
PEERCRED = struct.Struct("3i")  # pid, uid, gid

Peer = int | None


def peer_pid(transport: asyncio.BaseTransport) -> Peer:
    """The pid of the process at the other end of a Unix socket (None where it cannot be
    told)."""
    sock: Any = transport.get_extra_info("socket")
    if sock is None or sock.family != socket.AF_UNIX:
        return None
    try:
        pid, _, _ = PEERCRED.unpack(
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, PEERCRED.size)
        )
    except OSError:
        return None
    return int(pid)


class Connection(Protocol):
    @property
    def request_in_hand(self) -> bool: ...

    def close(self) -> None: ...


class ConnectionBook:
    """The open connections in the order they came (event-loop thread only)."""

    def __init__(self, total: int = MAX_CONNECTIONS, per_peer: int = MAX_CONNECTIONS_PER_PEER):
        self._total = total
        self._per_peer = per_peer
        self._open: dict[Connection, Peer] = {}
        self.evicted = 0
        self.refused = 0

    def __len__(self) -> int:
        return len(self._open)

    def admit(self, connection: Connection, peer: Peer) -> bool:
        """Make room for `connection` (evicting as above); False if there is none."""
        same_peer = sum(1 for other in self._open.values() if other == peer)
        if peer is not None and same_peer >= self._per_peer and not self._evict(peer):
            self.refused += 1
            return False
        if len(self._open) >= self._total and not self._evict(None):
            self.refused += 1
            return False
        self._open[connection] = peer
        return True

    def _evict(self, peer: Peer) -> bool:
        for connection, owner in self._open.items():
            if (peer is None or owner == peer) and not connection.request_in_hand:
                del self._open[connection]
                connection.close()
                self.evicted += 1
                return True
        return False

    def leave(self, connection: Connection) -> None:
        self._open.pop(connection, None)


class GuardedProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with the deadline and caps above. `book` is set on a
    subclass per server (`guarded_protocol`)."""

    book: ClassVar[ConnectionBook]
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if not self.book.admit(self, peer_pid(transport)):
            log.debug("api.connection_refused", open=len(self.book))
            self.close()
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self.book.leave(self)
        self._disarm()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.request_in_hand:
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self.request_in_hand:
            self._arm()

    @property
    def request_in_hand(self) -> bool:
        """A whole request is with the app and not answered yet."""
        cycle = self.cycle
        return cycle is not None and not cycle.more_body and not cycle.response_complete

    def close(self) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.close()

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(REQUEST_DEADLINE_S, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if not self.request_in_hand:
            self.close()


def guarded_protocol(book: ConnectionBook) -> type[GuardedProtocol]:
    """The protocol class for one server, counting its connections in `book`."""
    return type("ServerProtocol", (GuardedProtocol,), {"book": book})
