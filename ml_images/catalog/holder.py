"""Which process holds a claim (or runs a Dagster run), and whether that process is provably dead.

A holder is recorded as host name, *node* (the kernel boot and the PID namespace the process lives in), process
id and process start time. Death is only ever *proved* for a holder on the same node: the same PID namespace of
the same boot, so the process id means the same process; the start time tells a reused PID from the original.
Anything else (another machine, another container, a platform without ``/proc``) is "unknown", and only the
claim's lease (its heartbeat growing old) can free it.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import os
import socket
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")


class Liveness(enum.Enum):
    ALIVE = "alive"
    DEAD = "dead"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ProcessHolder:
    host: str
    node: str | None  # None where it cannot be determined (no /proc): liveness is then never provable
    pid: int
    started: int | None  # start time in clock ticks since boot (/proc/<pid>/stat field 22)

    def liveness(self) -> Liveness:
        """Whether this holder's process still runs, seen from the current process."""
        return liveness_of(self.node, self.pid, self.started)


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


@functools.cache
def current_node() -> str | None:
    """A digest of this boot's id and this PID namespace, or None where they cannot be read."""
    boot_id = _read(_PROC / "sys" / "kernel" / "random" / "boot_id")
    try:
        namespace = os.stat(_PROC / "self" / "ns" / "pid").st_ino
    except OSError:
        return None
    if not boot_id:
        return None
    return hashlib.sha256(f"{boot_id.strip()}:{namespace}".encode()).hexdigest()[:32]


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/<pid>/stat (after the command name, which may hold spaces and parentheses)."""
    text = _read(_PROC / str(pid) / "stat")
    if text is None or ")" not in text:
        return None
    return text.rsplit(")", 1)[1].split()


def process_start(pid: int) -> int | None:
    fields = _stat_fields(pid)
    if fields is None or len(fields) < 20:
        return None
    try:
        return int(fields[19])  # field 22 of the whole line
    except ValueError:
        return None


def current_holder() -> ProcessHolder:
    pid = os.getpid()
    return ProcessHolder(host=socket.gethostname()[:255], node=current_node(), pid=pid, started=process_start(pid))


def liveness_of(node: str | None, pid: int | None, started: int | None) -> Liveness:
    here = current_node()
    if node is None or here is None or node != here or pid is None or pid < 1:
        return Liveness.UNKNOWN
    fields = _stat_fields(pid)
    if fields is None:
        return Liveness.DEAD if not (_PROC / str(pid)).exists() else Liveness.UNKNOWN
    state = fields[0] if fields else ""
    if state in ("Z", "X", "x"):  # exited, not yet reaped by its parent: it will never write again
        return Liveness.DEAD
    if started is not None and process_start(pid) != started:
        return Liveness.DEAD  # the PID was reused by another process
    return Liveness.ALIVE
