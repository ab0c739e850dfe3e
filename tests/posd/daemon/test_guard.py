"""The server's connection caps: who is evicted to make room, and when a newcomer is refused."""

from __future__ import annotations

from dataclasses import dataclass

from posd.daemon.guard import ConnectionBook


@dataclass(eq=False)
class Conn:
    request_in_hand: bool = False
    closed: bool = False

    def close(self) -> None:
        self.closed = True


def test_a_peer_over_its_cap_loses_its_oldest_idle_connection() -> None:
    book = ConnectionBook(total=10, per_peer=2)
    busy, idle, newcomer = Conn(request_in_hand=True), Conn(), Conn()
    assert book.admit(busy, 1) and book.admit(idle, 1)
    other = Conn()
    assert book.admit(other, 2)
    assert book.admit(newcomer, 1)
    assert (busy.closed, idle.closed, other.closed) == (False, True, False)
    assert len(book) == 3 and book.evicted == 1


def test_over_the_total_the_oldest_idle_of_anyone_goes() -> None:
    book = ConnectionBook(total=2, per_peer=2)
    first, second = Conn(), Conn()
    assert book.admit(first, 1) and book.admit(second, 2)
    assert book.admit(Conn(), 3)
    assert first.closed and not second.closed


def test_a_newcomer_is_refused_only_when_every_connection_has_a_request_in_the_app() -> None:
    book = ConnectionBook(total=2, per_peer=2)
    assert book.admit(Conn(request_in_hand=True), 1)
    assert book.admit(Conn(request_in_hand=True), 2)
    assert not book.admit(Conn(), 3)
    assert book.refused == 1 and len(book) == 2


def test_a_closed_connection_leaves_room() -> None:
    book = ConnectionBook(total=1, per_peer=1)
    busy = Conn(request_in_hand=True)
    assert book.admit(busy, 1)
    book.leave(busy)
    assert book.admit(Conn(request_in_hand=True), 1)
