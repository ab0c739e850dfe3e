"""Look for clear card numbers where P2PE mode promises there are none: files (the journal,
the daemon's log) and a running process's memory.

The demo's `--reader secure-msr` run ends with this scan of the daemon: every deck PAN, as
ASCII digits, in the journal file, the log, and each readable private region of the daemon's
address space (`/proc/PID/maps`, read through `/proc/PID/mem`; Linux only, and only a process
the caller may trace: its own child, under Yama's default). Shared mappings (libraries, the
files the process mapped) are left out: they are files, and the files that matter are
scanned as files. A process none of whose regions could be read is an error, never "0 found".
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from posd.errors import PosdError

CHUNK_BYTES = 1 << 20
READABLE, PRIVATE = "r", "p"
MAPS_FIELDS_WITH_PATH = 6


class PanScanError(PosdError):
    code = "pan_scan_failed"


@dataclass(frozen=True)
class Region:
    start: int
    end: int
    perms: str
    path: str

    @property
    def scannable(self) -> bool:
        return self.perms.startswith(READABLE) and self.perms[3] == PRIVATE


def parse_maps(text: str) -> list[Region]:
    """`/proc/PID/maps` lines -> regions (address range, permissions, path if any)."""
    regions = []
    for line in text.splitlines():
        fields = line.split(maxsplit=MAPS_FIELDS_WITH_PATH - 1)
        if len(fields) < MAPS_FIELDS_WITH_PATH - 1:
            continue
        start, _, end = fields[0].partition("-")
        path = fields[MAPS_FIELDS_WITH_PATH - 1] if len(fields) == MAPS_FIELDS_WITH_PATH else ""
        regions.append(Region(int(start, 16), int(end, 16), fields[1], path))
    return regions


class Counter:
    """Occurrences of each needle across a stream of chunks (a hit split by a chunk boundary
    counts once)."""

    def __init__(self, needles: Iterable[bytes]) -> None:
        self.counts = dict.fromkeys(needles, 0)
        self._tails = dict.fromkeys(self.counts, b"")

    def feed(self, chunk: bytes) -> None:
        for needle in self.counts:
            data = self._tails[needle] + chunk
            self.counts[needle] += data.count(needle)
            keep = len(needle) - 1
            self._tails[needle] = data[-keep:] if keep else b""

    def end_of_stream(self) -> None:
        """A region or file ended: no hit spans into the next one."""
        self._tails = dict.fromkeys(self.counts, b"")

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _needles(pans: Sequence[str]) -> list[bytes]:
    return [pan.encode("ascii") for pan in pans]


def _chunks_of(handle: object, size: int) -> Iterator[bytes]:
    read = handle.read  # type: ignore[attr-defined]
    left = size
    while left > 0:
        chunk: bytes = read(min(CHUNK_BYTES, left))
        if not chunk:
            return
        left -= len(chunk)
        yield chunk


def scan_files(paths: Iterable[Path], pans: Sequence[str]) -> int:
    """Occurrences of the PANs in these files (missing files hold none)."""
    counter = Counter(_needles(pans))
    for path in paths:
        if not path.is_file():
            continue
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
                counter.feed(chunk)
        counter.end_of_stream()
    return counter.total


def scan_process(pid: int, pans: Sequence[str]) -> int:
    """Occurrences of the PANs in the readable private memory of process `pid`.

    `PanScanError` if its maps cannot be read or none of its regions could be."""
    proc = Path("/proc") / str(pid)
    try:
        regions = [r for r in parse_maps((proc / "maps").read_text()) if r.scannable]
    except OSError as error:
        raise PanScanError(f"cannot read the memory map of pid {pid}: {error.strerror}") from None
    counter = Counter(_needles(pans))
    read_any = False
    try:
        memory = (proc / "mem").open("rb", buffering=0)
    except OSError as error:
        raise PanScanError(f"cannot open the memory of pid {pid}: {error.strerror}") from None
    with memory:
        for region in regions:
            try:
                memory.seek(region.start)
                for chunk in _chunks_of(memory, region.end - region.start):
                    counter.feed(chunk)
                    read_any = True
            except OSError:
                pass  # a guard page or a region gone since the map was read
            counter.end_of_stream()
    if not read_any:
        raise PanScanError(f"no region of pid {pid}'s memory could be read")
    return counter.total
