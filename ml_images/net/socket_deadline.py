"""A wall-clock limit on a call, enforced on the sockets it reads from.

Read timeouts bound the gap between two packets, not the call: a server that sends one byte a second never trips
them. At the deadline a timer shuts down every socket the deadline tracks, which wakes a blocked ``recv`` with
EOF; ``expired`` then tells the reader that the EOF was ours, not the server's.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class SocketDeadline:
    """Shuts its tracked sockets down ``seconds`` after it is made; the timer runs from ``start()``.

    It tracks duplicate descriptors, not socket objects: TLS wrapping detaches the original object (and a TLS socket
    cannot be ``dup()``-ed), and a descriptor the deadline owns can never be one the OS has meanwhile handed to
    another thread's connection.
    """

    def __init__(self, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError("a deadline must be positive")
        self.seconds = seconds
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._fired = False
        self._closed = False
        self._ends_at = time.monotonic() + seconds
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def start(self) -> None:
        self._timer.start()

    @property
    def expired(self) -> bool:
        return self._fired or time.monotonic() >= self._ends_at

    def remaining(self) -> float:
        return max(0.0, self._ends_at - time.monotonic())

    def track(self, duplicate: socket.socket) -> bool:
        """Shut ``duplicate`` (a descriptor the deadline now owns) down at the deadline. False when the deadline
        has fired (it is shut down at once) or been closed; ``duplicate`` is closed then."""
        with self._lock:
            if self._fired or self._closed:
                if self._fired:
                    _shutdown(duplicate)
                duplicate.close()
                return False
            self._sockets.append(duplicate)
            return True

    def _fire(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._fired = True
            for sock in self._sockets:
                _shutdown(sock)

    def close(self) -> None:
        self._timer.cancel()
        with self._lock:
            self._closed = True
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()
            self._sockets.clear()


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
