"""Child processes for the benchmark: started with their own logs, CPU time readable, always stopped."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import IO

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Processes:
    """The benchmark's children by name; `stop_all` terminates them (then kills the stubborn) in reverse order."""

    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> subprocess.Popen[bytes]:
        log = (self._log_dir / f"{name}.log").open("wb")
        self._logs.append(log)
        child = subprocess.Popen(argv, env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT)
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
        stat = Path(f"/proc/{self.pid(name)}/stat").read_text()
        fields = stat.rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS

    def stop_all(self, grace: float = 5.0) -> None:
        for child in reversed(list(self._children.values())):
            if child.poll() is None:
                child.terminate()
        for child in reversed(list(self._children.values())):
            try:
                child.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(timeout=grace)
        self._children.clear()
        for log in self._logs:
            log.close()


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so `finally` blocks stop the children."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
