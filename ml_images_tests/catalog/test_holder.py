"""Process holders: a process of this machine is provably alive or dead; anything else is unknown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest

from ml_images.catalog.holder import Liveness, current_holder, current_node, liveness_of, process_start
from ml_images_tests.holders import exited_process

pytestmark = pytest.mark.skipif(current_node() is None, reason="needs /proc (Linux)")


def test_this_process_is_alive():
    me = current_holder()
    assert me.pid == os.getpid()
    assert me.node == current_node()
    assert me.started is not None
    assert me.liveness() is Liveness.ALIVE


def test_an_exited_process_is_dead():
    assert exited_process().liveness() is Liveness.DEAD


def test_a_killed_but_unreaped_process_is_dead():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = process_start(child.pid)
        os.kill(child.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while liveness_of(current_node(), child.pid, started) is not Liveness.DEAD:  # a zombie until reaped
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        child.kill()
        child.wait(timeout=10)


def test_a_reused_pid_is_not_the_recorded_process():
    me = current_holder()
    assert replace(me, started=(me.started or 0) + 1).liveness() is Liveness.DEAD


def test_another_machine_or_an_unknown_node_proves_nothing():
    me = current_holder()
    assert replace(me, node="0" * 32).liveness() is Liveness.UNKNOWN
    assert replace(me, node=None).liveness() is Liveness.UNKNOWN
    assert liveness_of(current_node(), None, None) is Liveness.UNKNOWN
