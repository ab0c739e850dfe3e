"""DNS, TCP and TLS reach of an endpoint, each timed, and the clock's skew against the
`Date` header of the endpoint's answer (SigV4 refuses requests more than 5 minutes off)."""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

HTTPS = "https"
DEFAULT_PORTS = {"https": 443, "http": 80}
MS = 1000.0


@dataclass(frozen=True)
class Reach:
    host: str
    port: int
    dns_ms: float | None = None
    tcp_ms: float | None = None
    tls_ms: float | None = None  # None for an http:// endpoint
    error: str | None = None  # the first step that failed, and why


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * MS, 1)


def reach(url: str, timeout: float) -> Reach:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or DEFAULT_PORTS.get(parts.scheme, 443)
    started = time.perf_counter()
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        return Reach(host, port, error=f"DNS: {error}")
    dns_ms = _ms(started)
    family, kind, proto, _, address = addresses[0]
    started = time.perf_counter()
    try:
        sock = socket.socket(family, kind, proto)
        sock.settimeout(timeout)
        sock.connect(address)
    except OSError as error:
        sock.close()
        return Reach(host, port, dns_ms, error=f"TCP: {error}")
    tcp_ms = _ms(started)
    if parts.scheme != HTTPS:
        sock.close()
        return Reach(host, port, dns_ms, tcp_ms)
    started = time.perf_counter()
    try:
        with ssl.create_default_context().wrap_socket(sock, server_hostname=host):
            pass
    except (OSError, ssl.SSLError) as error:
        return Reach(host, port, dns_ms, tcp_ms, error=f"TLS: {error}")
    finally:
        sock.close()
    return Reach(host, port, dns_ms, tcp_ms, _ms(started))


def clock_skew_seconds(url: str, timeout: float) -> float:
    """Local clock minus the server's `Date` (any answer will do: even an error has one)."""
    parts = urlsplit(url)
    cls = http.client.HTTPSConnection if parts.scheme == HTTPS else http.client.HTTPConnection
    conn = cls(parts.hostname or "", parts.port, timeout=timeout)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        response.read()
        date = response.getheader("Date")
    finally:
        conn.close()
    if not date:
        raise ValueError("the answer carries no Date header")
    return round(time.time() - parsedate_to_datetime(date).timestamp(), 1)
