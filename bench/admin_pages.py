"""Admin page timings on a large community: every admin page and list answers in under 200 ms with 100,000 members.

Usage: .venv/bin/python bench/admin_pages.py [--members 100000] [--repeat 15] [--backend sqlite|postgres]
                                             [--postgres-url URL]

Seeds a database straight through SQL (members over 60 days with every consent and tier, their payments, a month's
care message in the outbox, journeys with some failed steps, the audit log), starts the app in this process on a
real socket (uvicorn, no background work) and requests each page `--repeat` times with the admin token, reporting
the median and the slowest time per page against the 200 ms target. A benchmark script, not a test: it exits 1
only when a page does not answer 200 or shows the wrong data, never on the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from databases import DEFAULT_POSTGRES_URL, postgres_database, sqlite_database

from weft.adapters.sql import schema as t
from weft.adapters.sql.engine import create_engine
from weft.adapters.sql.migrate import migrate
from weft.bootstrap import bootstrap
from weft.config import Settings
from weft.entrypoints.http.app import create_app

TARGET_MS = 200.0
TOKEN = "bench-admin-token"
RESULTS = Path(__file__).resolve().parent / "results" / "admin_pages.json"
NOW = datetime.now(UTC).replace(microsecond=0)


def phone(n: int) -> str:
    return f"+1212{2_000_000 + n:07d}"


def seed(url: str, members: int) -> None:
    engine = create_engine(url)
    migrate(engine)
    rng = random.Random(7)
    with engine.begin() as c:
        for start in range(0, members, 10_000):
            c.execute(t.subscribers.insert(), [_member(n, rng) for n in range(start, min(members, start + 10_000))])
        c.execute(t.consent_history.insert(), [
            {"phone": phone(n), "consent": "opted_out", "at": NOW - timedelta(days=n % 30), "message_id": f"m{n}",
             "reason": "keyword STOP"} for n in range(0, members, 20)])
        c.execute(t.payments.insert(), [_payment(n) for n in range(0, members, 5)])
        for start in range(0, members, 10_000):
            c.execute(t.outbox.insert(), [_care(n) for n in range(start, min(members, start + 10_000))])
        c.execute(t.journeys.insert(), [_journey(n) for n in range(0, members, 20)])
        c.execute(t.audit_log.insert(), [
            {"action": "journey.sms_sent", "at": NOW - timedelta(minutes=n), "phone": phone(n), "payment_id": None,
             "details": {}} for n in range(0, members, 2)])
    engine.dispose()


def _member(n: int, rng: random.Random) -> dict[str, Any]:
    at = NOW - timedelta(minutes=rng.randrange(60 * 24 * 60))
    paid = n % 5 == 0
    return {"phone": phone(n), "consent": ("opted_out" if n % 20 == 0 else "subscribed"),
            "membership": "paid" if paid else "free", "paid_tier": "10" if paid else None,
            "email": f"member{n}@example.org", "created_at": at, "updated_at": at, "last_message": "LOVE",
            "last_message_at": at}


def _payment(n: int) -> dict[str, Any]:
    return {"id": f"pay_{n}", "phone": phone(n), "email": f"member{n}@example.org", "tier": "10",
            "amount_cents": 1000, "payment_type": "monthly", "status": "active", "checkout_session_id": f"cs_{n}",
            "customer_id": f"cus_{n}", "subscription_id": f"sub_{n}", "past_due_notified": False,
            "phone_proven": True, "created_at": NOW - timedelta(hours=n % 700), "updated_at": NOW}


def _care(n: int) -> dict[str, Any]:
    status = "failed" if n % 50 == 0 else "sent"
    return {"id": f"care:2026-12:{phone(n)}", "phone": phone(n), "text": "Our monthly care message",
            "kind": "care", "lane": 1, "status": status, "attempts": 1, "campaign_id": "care-2026-12",
            "created_at": NOW - timedelta(minutes=n % (60 * 24 * 30)), "sent_at": NOW,
            "delivery_state": "delivered" if n % 3 else None}


def _journey(n: int) -> dict[str, Any]:
    failed = n % 100 == 0
    steps = {"email_sent": {"at": NOW.isoformat(), "ok": not failed, "detail": "SMTP timed out" if failed else "",
                            "transient": failed}}
    return {"id": f"journey-{n}", "payment_id": f"pay_{n}", "started_at": NOW - timedelta(minutes=n),
            "steps": steps, "has_failed_step": failed}


def pages(members: int) -> list[tuple[str, str]]:
    return [
        ("overview", "/admin/"),
        ("members", "/admin/members"),
        ("members, page 2", "@next"),
        ("members by phone", "/admin/members?q=(212) 200-0007"),
        ("members by email", f"/admin/members?q=member{members // 2}@example.org"),
        ("opted-out members", "/admin/members?consent=opted_out"),
        ("paid members", "/admin/members?tier=10"),
        ("a member", f"/admin/members/{phone(20).replace('+', '%2B')}"),
        ("failed journeys", "/admin/journeys"),
        ("campaigns", "/admin/campaigns"),
        ("delivery", "/admin/delivery"),
        ("audit log", "/admin/audit"),
        ("API members", "/api/admin/subscribers?limit=100"),
        ("API messages", "/api/admin/messages?limit=100"),
        ("API failed messages", "/api/admin/messages?failed=1&limit=100"),
    ]


def serve(url: str) -> tuple[uvicorn.Server, str]:
    settings = Settings(database_url=url, admin_token=TOKEN, scheduler=False, link_secret="bench")
    config = uvicorn.Config(create_app(bootstrap(settings), background=False), host="127.0.0.1", port=0,
                            log_level="warning")
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"


def measure(base: str, members: int, repeat: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        first = client.get("/api/admin/subscribers", params={"limit": 50}).json()
        for name, path in pages(members):
            if path == "@next":
                path = f"/admin/members?after={first['next']}"
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                response = client.get(path)
                times.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise SystemExit(f"{name}: {path} answered {response.status_code}: {response.text[:300]}")
            results[name] = {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1),
                             "met": max(times) < TARGET_MS}
        check = client.get("/admin/members", params={"q": "(212) 200-0007"}).text
        if "+12122000007" not in check:
            raise SystemExit("the search by phone did not find the member")
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--postgres-url", default=os.environ.get("WEFT_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        database = (sqlite_database(Path(workdir), "admin") if args.backend == "sqlite"
                    else postgres_database(args.postgres_url))
        with database as url:
            started = time.perf_counter()
            seed(url, args.members)
            print(f"seeded {args.members} members in {time.perf_counter() - started:.1f} s", file=sys.stderr)
            server, base = serve(url)
            try:
                results = measure(base, args.members, args.repeat)
            finally:
                server.should_exit = True
    for name, r in results.items():
        print(f"{name:20} median {r['median_ms']:7.1f} ms  slowest {r['max_ms']:7.1f} ms  "
              f"(target < {TARGET_MS:.0f} ms: {'met' if r['met'] else 'MISSED'})")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"members": args.members, "backend": args.backend, "pages": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
