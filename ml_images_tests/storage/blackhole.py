"""TCP endpoints on 127.0.0.1 that never answer, to reproduce an unresponsive S3 endpoint.

* ``silent_server()``: accepts every connection and reads what it is sent, but never writes a byte (a hung
  service behind a load balancer); the client waits on its read timeout.
* ``unaccepting_server()``: listens with a backlog of zero that a few idle connections fill, and never accepts; the
  kernel drops further SYNs, so the client waits on its connect timeout (a host that blackholes packets).

Both stop by themselves at the end of the ``with`` block.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass
class SilentServer:
    endpoint: str  # http://127.0.0.1:PORT
    connections: int = 0  # accepted so far


@contextlib.contextmanager
def silent_server() -> Iterator[SilentServer]:
    """A server that accepts and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    server = SilentServer(f"http://127.0.0.1:{listener.getsockname()[1]}")
    stop = threading.Event()
    accepted: list[socket.socket] = []

    def drain(conn: socket.socket) -> None:
        conn.settimeout(0.1)
        while not stop.is_set():
            try:
                if not conn.recv(65536):
                    return  # the client gave up and closed
            except TimeoutError:
                continue
            except OSError:
                return

    def accept_loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append(conn)
            server.connections += 1
            threading.Thread(target=drain, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept_loop, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in accepted:
            conn.close()
        listener.close()


@contextlib.contextmanager
def unaccepting_server() -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of a listener whose accept queue is full: new connections never complete."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):  # Linux queues backlog + 1 connections; the others wait for a SYN-ACK that never comes
        filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
