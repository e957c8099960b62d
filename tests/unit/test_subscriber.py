from __future__ import annotations

from datetime import UTC, datetime

from weft.domain.messages import MessageKind
from weft.domain.phone import PhoneNumber, mask_phone, mask_phones_in
from weft.domain.subscriber import Consent, Subscriber

AT = datetime(2026, 11, 1, tzinfo=UTC)


def _member() -> Subscriber:
    return Subscriber.first_contact(PhoneNumber("+14155550123"), AT)


def test_an_opted_out_number_may_receive_only_its_opt_out_confirmation_and_answers_to_help() -> None:
    member = _member()
    member.opt_out(AT, "m1")
    allowed = [kind for kind in MessageKind if member.may_receive(kind)]
    assert allowed == [MessageKind.OPT_OUT_CONFIRMATION, MessageKind.HELP]


def test_opting_out_twice_changes_consent_once() -> None:
    member = _member()
    assert member.opt_out(AT, "m1") is True
    assert member.opt_out(AT, "m2") is False
    assert [c.message_id for c in member.changes] == ["m1"]
    assert member.consent_message_id == "m1"


def test_opting_back_in_records_the_change_and_the_message() -> None:
    member = _member()
    member.opt_out(AT, "m1")
    assert member.opt_in(AT, "m2") is True
    assert member.consent is Consent.SUBSCRIBED
    assert [c.consent for c in member.changes] == [Consent.OPTED_OUT, Consent.SUBSCRIBED]


def test_a_first_contact_has_not_consented_to_recurring_messages() -> None:
    assert _member().consent is Consent.NONE


def test_masking_keeps_only_the_last_four_digits() -> None:
    assert mask_phone("+14155550123") == "+*******0123"
    assert PhoneNumber("+447700900123").masked == "+********0123"


def test_phones_inside_log_text_are_masked_plain_and_url_encoded() -> None:
    line = "SMS to +14155550123: http://x/?phone=%2B14155550123 originator=14155550123 at 2026-11-23 16:43"
    assert mask_phones_in(line) == (
        "SMS to +*******0123: http://x/?phone=%2B*******0123 originator=*******0123 at 2026-11-23 16:43"
    )
