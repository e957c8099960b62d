"""`weft serve` as a real child process, for tests that kill it (kill -9) or run two instances on one database;
and fast seeding of members straight into its database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx

from weft.adapters.sql import schema as t
from weft.adapters.sql.engine import create_engine
from weft.adapters.sql.migrate import migrate

ADMIN_TOKEN = "service-admin-token"


class Service:
    """One `weft serve` process (its own process group) with its log in a file."""

    def __init__(self, env: Mapping[str, str], log: Path, args: Sequence[str] = ()) -> None:
        self.port = _free_port()
        self.log = log
        self._args = list(args)
        self._env = {**os.environ, **env, "WEFT_ADMIN_TOKEN": ADMIN_TOKEN}
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Service:
        with self.log.open("ab") as out:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "weft.entrypoints.cli", "serve", "--port", str(self.port), *self._args],
                env=self._env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while not self._healthy():
            if time.monotonic() > deadline or self._process.poll() is not None:
                raise RuntimeError(f"weft serve did not start; see {self.log}:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.05)
        return self

    def kill(self) -> None:
        """kill -9 the whole group: no shutdown, no last commit."""
        if self._process is not None:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=10)
            self._process = None

    def stop(self) -> None:
        if self._process is not None:
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.kill()
            self._process = None

    def post(self, path: str, **kwargs: object) -> httpx.Response:
        return httpx.post(self.url + path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30,
                          **kwargs)  # type: ignore[arg-type]

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30)

    def _healthy(self) -> bool:
        try:
            return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False


def seed_members(database_url: str, phones: Sequence[str]) -> None:
    """Free members with a completed sign-up and subscribed consent, written straight to the database."""
    engine = create_engine(database_url)
    migrate(engine)
    now = datetime.now(UTC)
    with engine.begin() as c:
        c.execute(t.subscribers.insert(), [
            {"phone": p, "consent": "subscribed", "membership": "free", "created_at": now, "updated_at": now}
            for p in phones])
        c.execute(t.payments.insert(), [
            {"id": f"pay_seed_{i}", "phone": p, "email": f"m{i}@example.org", "tier": "free", "amount_cents": 0,
             "status": "completed", "checkout_session_id": f"free_seed_{i}", "past_due_notified": False,
             "phone_proven": True, "created_at": now, "updated_at": now}
            for i, p in enumerate(phones)])
    engine.dispose()


def member_phones(count: int, first: int = 2_000_000) -> list[str]:
    return [f"+1212{first + n:07d}" for n in range(count)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
