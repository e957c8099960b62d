"""The Bird automation sync and Bird's delivery receipts, against a loopback Bird, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.integration.conftest import ADMIN_TOKEN, RunningApp, fixture_bytes
from tests.integration.loopback import LoopbackBird
from tests.integration.test_bird_webhook import applied, post_signed, text_in

PHONE = "+14155550123"
SYNC = "/api/bird/sync-automation"


def stamp(minutes_ago: float) -> str:
    at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def incoming(message_id: str, text: str, minutes_ago: float, phone: str = PHONE) -> dict[str, Any]:
    return {
        "id": message_id, "channelId": "ch-default", "direction": "incoming", "status": "delivered",
        "sender": {"contact": {"identifierKey": "phonenumber", "identifierValue": phone}},
        "receiver": {"connector": {"id": "conn-1"}},
        "body": {"type": "text", "text": {"text": text}}, "createdAt": stamp(minutes_ago),
    }


def outgoing(message_id: str, text: str, minutes_ago: float, phone: str = PHONE,
             reference: str = "") -> dict[str, Any]:
    return {
        "id": message_id, "channelId": "ch-default", "direction": "outgoing", "status": "delivered",
        "receiver": {"contacts": [{"identifierKey": "phonenumber", "identifierValue": phone}]},
        "body": {"type": "text", "text": {"text": text}}, "reference": reference, "createdAt": stamp(minutes_ago),
    }


def sync(app: RunningApp) -> dict[str, Any]:
    response = app.client.post(SYNC, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_the_sync_pages_through_every_page_and_records_each_message_once(
    app: RunningApp, bird: LoopbackBird
) -> None:
    bird.history = [
        incoming("b-1", "LOVE", 120, phone="+14155550124"),
        outgoing("b-2", "Thanks for texting! Here is our newsletter.", 119, phone="+14155550124"),
        incoming("b-3", "hello there", 90),
        incoming("b-4", "HELP", 80, phone="+14155550125"),
        outgoing("b-5", "Flow Builder says hi", 70),
    ]
    counts = sync(app)
    assert {k: counts[k] for k in ("fetched", "new_inbound", "new_outbound", "keyword_changes", "pages")} == \
        {"fetched": 5, "new_inbound": 3, "new_outbound": 2, "keyword_changes": 2, "pages": 3}
    assert [q.get("pageToken") for q in bird.history_reads()] == [None, "2", "4"]
    assert "startAt" not in bird.history_reads()[0]  # the first run reads everything
    again = sync(app)
    assert (again["new_inbound"], again["new_outbound"]) == (0, 0)
    detail = applied(app, "+14155550124")
    assert detail["consent"] == "subscribed"
    history = [(m["kind"], m["status"], m["text"]) for m in detail["outbound"]]
    assert ("sent_by_provider", "sent", "Thanks for texting! Here is our newsletter.") in history


def test_a_stop_only_the_sync_saw_opts_the_number_out_and_a_late_one_gets_no_reply(
    app: RunningApp, bird: LoopbackBird
) -> None:
    bird.history = [incoming("b-love", "LOVE", 60), incoming("b-stop", "STOP", 30),
                    incoming("b-stop-2", "STOP", 0.5, phone="+14155550124")]
    assert sync(app)["keyword_changes"] == 3
    detail = applied(app)
    assert detail["consent"] == "opted_out"
    assert detail["consent_history"][-1]["message_id"] == "b-stop"
    assert detail["outbound"] == []  # half an hour late: Bird, which always listens for STOP, has answered it
    # A STOP inside the reply window is answered like one from the webhook.
    assert applied(app, "+14155550124")["consent"] == "opted_out"
    app.wait_for(lambda: len(bird.sent()) == 1)
    assert bird.recipients() == ["+14155550124"]


def test_a_love_found_hours_late_joins_but_gets_no_link_while_a_fresh_one_gets_its_link(
    app: RunningApp, bird: LoopbackBird
) -> None:
    bird.history = [incoming("b-late", "LOVE", 180), incoming("b-fresh", "LOVE", 2, phone="+14155550124")]
    sync(app)
    assert applied(app)["consent"] == "subscribed"
    app.wait_for(lambda: len(bird.sent()) == 1)
    assert bird.recipients() == ["+14155550124"]
    assert applied(app)["outbound"] == []


def test_a_late_text_older_than_the_numbers_last_choice_changes_nothing(
    app: RunningApp, bird: LoopbackBird
) -> None:
    text_in(app, "LOVE", "w-1")  # now
    bird.history = [incoming("b-old-stop", "STOP", 30)]  # sent half an hour before the LOVE
    sync(app)
    detail = applied(app)
    assert detail["consent"] == "subscribed"
    assert detail["last_message"] == "LOVE"


def test_the_next_run_resumes_from_the_cursor_and_finds_only_what_is_new(
    app: RunningApp, bird: LoopbackBird
) -> None:
    bird.history = [incoming("b-1", "hello", 60), incoming("b-2", "LOVE", 50)]
    first = sync(app)
    assert first["cursor"] is not None
    bird.history = [*bird.history, incoming("b-3", "STOP", 1)]
    second = sync(app)
    start_at = bird.history_reads()[-1]["startAt"]
    # From five minutes before the newest message the first run saw: only b-2 and b-3 are read again.
    assert datetime.fromisoformat(start_at) <= datetime.fromisoformat(first["cursor"]) - timedelta(minutes=5)
    assert (second["fetched"], second["new_inbound"]) == (2, 1)
    assert applied(app)["consent"] == "opted_out"


def test_our_own_sends_listed_by_bird_are_not_recorded_twice(app: RunningApp, bird: LoopbackBird) -> None:
    text_in(app, "LOVE", "w-1")
    app.wait_for(lambda: len(bird.accepted()) == 1)
    (ours,) = app.admin("/api/admin/messages").json()["messages"]
    app.wait_for(lambda: app.admin("/api/admin/messages").json()["messages"][0]["provider_id"] is not None)
    (ours,) = app.admin("/api/admin/messages").json()["messages"]
    bird.history = [outgoing(ours["provider_id"], ours["text"], 0.1),
                    outgoing("someone-else", ours["text"], 0.1, reference=ours["id"])]
    assert sync(app)["new_outbound"] == 0
    assert len(app.admin("/api/admin/messages").json()["messages"]) == 1


def test_bird_down_answers_503_and_the_cursor_stays(app: RunningApp, bird: LoopbackBird) -> None:
    bird.history = [incoming("b-1", "hello", 60)]
    cursor = sync(app)["cursor"]
    bird.down = True
    response = app.client.post(SYNC, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 503
    assert "Bird" in response.json()["error"]
    bird.down = False
    assert sync(app)["since"] == (datetime.fromisoformat(cursor) - timedelta(minutes=5)).isoformat()


def test_the_sync_needs_the_admin_token(app: RunningApp) -> None:
    assert app.client.get(SYNC).status_code == 401
    assert httpx.get(str(app.client.base_url) + SYNC, headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_bird_status_events_move_a_sent_texts_delivery_state_forward_only(
    app: RunningApp, bird: LoopbackBird
) -> None:
    text_in(app, "LOVE", "w-1")
    app.wait_for(lambda: app.message_statuses() == ["sent"])
    (message,) = app.admin("/api/admin/messages").json()["messages"]
    event = json.loads(fixture_bytes("bird/channels_sms_outbound.json"))
    for status in ("delivered", "sent", "accepted"):
        event["payload"].update(id=message["provider_id"], status=status)
        response = post_signed(app, json.dumps(event).encode())
        assert response.json() == {"status": "recorded"}
    (message,) = app.admin("/api/admin/messages").json()["messages"]
    assert message["delivery"]["state"] == "delivered"
    assert message["delivery"]["at"] == "2025-01-01T12:00:03.910000+00:00"
