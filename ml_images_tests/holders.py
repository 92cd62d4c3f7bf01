"""Real processes for the crash-recovery tests: one that has exited, recorded the way a claim records its holder."""

from __future__ import annotations

import subprocess
import sys

from ml_images.catalog.holder import ProcessHolder, current_node, process_start


def exited_process() -> ProcessHolder:
    """A process of this machine that ran, was killed and reaped: its pid and start time as a holder records them."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = process_start(child.pid)
    finally:
        child.kill()
        child.wait(timeout=10)
    return ProcessHolder(host="this-host", node=current_node(), pid=child.pid, started=started)
