"""Child processes for the benchmark: started with their own logs, CPU time readable, always stopped with their own
children (`weft serve` starts a `weft worker`)."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import IO

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PR_SET_CHILD_SUBREAPER = 36


class Processes:
    """The benchmark's children by name, each leading its own process group; `stop_all` terminates the groups (then
    kills the stubborn) and reaps what they leave behind."""

    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []
        become_subreaper()

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> subprocess.Popen[bytes]:
        log = (self._log_dir / f"{name}.log").open("wb")
        self._logs.append(log)
        child = subprocess.Popen(argv, env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        self._children[name] = child
        return child

    def pid(self, name: str) -> int:
        return self._children[name].pid

    def check_alive(self) -> None:
        """Raise when a child has exited early, naming it and its log."""
        for name, child in self._children.items():
            if child.poll() is not None:
                raise RuntimeError(f"{name} exited with {child.returncode}; see {self._log_dir / name}.log")

    def cpu_seconds(self, name: str) -> float:
        """User plus system CPU time the child has used so far."""
        return process_cpu_seconds(self.pid(name))

    def children_cpu_seconds(self, name: str) -> dict[int, float]:
        """CPU time used so far by each process the child itself started (e.g. `weft serve`'s worker), by pid."""
        return {pid: process_cpu_seconds(pid) for pid in child_pids(self.pid(name))}

    def stop_all(self, grace: float = 5.0) -> None:
        children = list(reversed(self._children.values()))
        for child in children:
            _signal_group(child.pid, signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                _signal_group(child.pid, signal.SIGKILL)
                child.wait(timeout=grace)
        for child in children:
            _wait_group_gone(child.pid, grace)
        self._children.clear()
        for log in self._logs:
            log.close()


def process_cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def child_pids(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in children.read_text().split()] if children.exists() else []


def become_subreaper() -> None:
    """Adopt orphaned descendants (a worker whose `weft serve` died first), so `stop_all` can reap them even where
    PID 1 does not reap (as in some containers)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def _signal_group(group: int, signum: int) -> None:
    try:
        os.killpg(group, signum)
    except ProcessLookupError:
        pass


def _wait_group_gone(group: int, grace: float) -> None:
    """Reap the group's adopted orphans until none is left, SIGKILLing whatever outlives `grace`."""
    if _gone_within(group, grace):
        return
    _signal_group(group, signal.SIGKILL)
    if not _gone_within(group, grace):
        print(f"process group {group} still has members; see `ps -g {group}`", file=sys.stderr)


def _gone_within(group: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _reap_group(group):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _reap_group(group: int) -> bool:
    """Reap exited members of the group; whether any member is still there."""
    try:
        while os.waitid(os.P_PGID, group, os.WEXITED | os.WNOHANG) is not None:
            pass
    except ChildProcessError:
        pass
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so `finally` blocks stop the children."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
