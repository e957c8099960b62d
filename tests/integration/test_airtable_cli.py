"""`weft airtable check|import|push|status` as an organiser runs them, against a loopback Airtable."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from tests.integration.loopback_airtable import BASE_ID, NUMBERS, PAYMENTS, TOKEN, LoopbackAirtable
from tests.integration.test_cli import weft


def airtable_weft(tmp_path: Path, airtable: LoopbackAirtable, *args: str):  # type: ignore[no-untyped-def]
    return weft(tmp_path, "airtable", *args, AIRTABLE_API_KEY=TOKEN, AIRTABLE_BASE_ID=BASE_ID,
                AIRTABLE_API_URL=airtable.url)


def seed_base(airtable: LoopbackAirtable) -> None:
    airtable.add(NUMBERS, {"Phone Number": "+14155550123", "Message": "STOP", "Consent": "subscribed"})
    airtable.add(NUMBERS, {"Phone Number": "+14155550124", "Message": "LOVE"})
    airtable.add(NUMBERS, {"Phone Number": "(415) 555-0125", "Message": "LOVE"})
    airtable.add(NUMBERS, {"Phone Number": "+14155550126", "Message": "LOVE"})
    airtable.add(NUMBERS, {"Phone Number": "+14155550126", "Message": "HELP"})
    airtable.add(PAYMENTS, {"Email": "ada@example.org", "Phone Number": "+14155550124", "Tier": "free",
                            "Amount": 0, "Stripe Session ID": "free_1", "Status": "completed"})
    airtable.add(PAYMENTS, {"Email": "bo@example.org", "Phone Number": "+14155550127", "Tier": "10", "Amount": 10,
                            "Payment Type": "monthly", "Stripe Customer ID": "cus_1", "Stripe Subscription ID":
                            "sub_1", "Stripe Session ID": "cs_1", "Status": "active"})
    airtable.add(PAYMENTS, {"Email": "cy@example.org", "Phone Number": "+14155550128", "Tier": "25", "Amount": 25,
                            "Payment Type": "one-time", "Stripe Session ID": "cs_2", "Status": "pending"})
    for _ in range(2):
        airtable.add(PAYMENTS, {"Email": "di@example.org", "Phone Number": "+14155550129", "Tier": "5",
                                "Amount": 5, "Payment Type": "one-time", "Stripe Session ID": "cs_dup",
                                "Status": "completed"})
    airtable.add(PAYMENTS, {"Email": "ed@example.org", "Phone Number": "+14155550130", "Tier": "5", "Amount": 5,
                            "Payment Type": "one-time", "Status": "completed"})


def table(tmp_path: Path, name: str) -> list[dict[str, object]]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'weft.db'}")
    try:
        with engine.connect() as connection:
            return [dict(r._mapping) for r in connection.execute(sa.text(f"SELECT * FROM {name}"))]
    finally:
        engine.dispose()


def test_check_says_the_base_is_ready_when_every_field_is_there(tmp_path: Path, airtable: LoopbackAirtable) -> None:
    result = airtable_weft(tmp_path, airtable, "check")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('The base is ready: "Phone Numbers" and "Payments"')


def test_check_names_each_missing_table_missing_field_and_wrong_type(
    tmp_path: Path, airtable: LoopbackAirtable
) -> None:
    del airtable.schema[NUMBERS]["Consent"]
    airtable.schema[NUMBERS]["Created"] = "singleLineText"
    del airtable.schema[PAYMENTS]

    result = airtable_weft(tmp_path, airtable, "check")

    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        'The table "Phone Numbers" has no field "Consent" (make it singleSelect or singleLineText or multilineText).',
        'The field "Created" of "Phone Numbers" is singleLineText; make it dateTime or date.',
        'The table "Payments" is missing.',
    ]


def test_a_wrong_token_is_a_clear_refusal(tmp_path: Path, airtable: LoopbackAirtable) -> None:
    result = weft(tmp_path, "airtable", "check", AIRTABLE_API_KEY="patSomeoneElse0001.abc", AIRTABLE_BASE_ID=BASE_ID,
                  AIRTABLE_API_URL=airtable.url)

    assert result.returncode == 1
    assert "refused the request (401): AUTHENTICATION_REQUIRED" in result.stderr
    assert "patSomeoneElse" not in result.stderr + result.stdout


def test_without_airtable_settings_the_commands_say_what_to_set(tmp_path: Path) -> None:
    result = weft(tmp_path, "airtable", "push")

    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "weft: Airtable is not configured: set AIRTABLE_API_KEY and AIRTABLE_BASE_ID")


def test_import_dry_run_reports_and_changes_nothing(tmp_path: Path, airtable: LoopbackAirtable) -> None:
    seed_base(airtable)

    result = airtable_weft(tmp_path, airtable, "import", "--dry-run")

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        "Dry run: nothing was changed. Weft would create 4 numbers (1 opted out) and 3 payments (2 memberships); "
        "0 were in Weft already.")
    assert table(tmp_path, "subscribers") == [] and table(tmp_path, "payments") == []


def test_import_brings_the_base_in_once_and_reports_what_it_would_have_to_guess(
    tmp_path: Path, airtable: LoopbackAirtable
) -> None:
    seed_base(airtable)

    first = airtable_weft(tmp_path, airtable, "import")
    second = airtable_weft(tmp_path, airtable, "import")

    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0] == ("Weft created 4 numbers (1 opted out) and 3 payments (2 memberships); "
                        "0 were in Weft already.")
    problems = "\n".join(lines[1:])
    assert "'(415) 555-0125' is not in international form" in problems
    assert "The number +14155550126 is on more than one row" in problems
    assert "The Stripe Session ID cs_dup is on more than one row" in problems
    assert "no Stripe Session ID" in problems
    subscribers = {s["phone"]: s for s in table(tmp_path, "subscribers")}
    assert {p: (s["consent"], s["paid_tier"]) for p, s in subscribers.items()} == {
        "+14155550123": ("opted_out", None), "+14155550124": ("subscribed", None),
        "+14155550127": ("none", "10"), "+14155550128": ("none", None),
    }
    assert subscribers["+14155550127"]["stripe_subscription_id"] == "sub_1"
    ledger = [(h["phone"], h["consent"], h["reason"]) for h in table(tmp_path, "consent_history")]
    assert ("+14155550123", "opted_out", "imported from Airtable") in ledger
    payments = {p["checkout_session_id"]: p["status"] for p in table(tmp_path, "payments")}
    assert payments == {"free_1": "completed", "cs_1": "active", "cs_2": "pending"}
    assert second.stdout.splitlines()[0] == (
        "Weft created 0 numbers (0 opted out) and 0 payments (0 memberships); 5 were in Weft already.")
    assert len(table(tmp_path, "subscribers")) == 4 and len(table(tmp_path, "payments")) == 3


def test_push_copies_every_record_to_a_new_base(tmp_path: Path, airtable: LoopbackAirtable) -> None:
    seed_base(airtable)
    assert airtable_weft(tmp_path, airtable, "import").returncode == 0
    airtable.tables[NUMBERS].clear()
    airtable.tables[PAYMENTS].clear()

    result = airtable_weft(tmp_path, airtable, "push")

    assert result.returncode == 0, result.stderr
    assert "pushed 7 records to the base" in result.stdout
    assert sorted(r["Phone Number"] for r in airtable.rows(NUMBERS)) == [
        "+14155550123", "+14155550124", "+14155550127", "+14155550128"]
    assert sorted(r["Stripe Session ID"] for r in airtable.rows(PAYMENTS)) == ["cs_1", "cs_2", "free_1"]
    assert [r["Consent"] for r in airtable.rows(NUMBERS) if r["Phone Number"] == "+14155550123"] == ["opted out"]
    status = airtable_weft(tmp_path, airtable, "status")
    assert "waiting: 0 copies" in status.stdout
