"""The domain rules of sending: segments, quiet hours across zones and DST, the care eligibility table, lanes
and idempotency keys."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from weft.domain.care import CareMonth, SkipReason, care_skip_reason
from weft.domain.messages import Lane, MessageKind, lane_of, outbox_key
from weft.domain.payment import PaymentStatus
from weft.domain.quiet_hours import QuietHours
from weft.domain.segments import sms_segments
from weft.domain.subscriber import Consent

NIGHT = QuietHours.parse("21:00-09:00")
NEW_YORK, LOS_ANGELES, HONOLULU = "America/New_York", "America/Los_Angeles", "Pacific/Honolulu"


@pytest.mark.parametrize(("text", "segments"), [
    ("a" * 160, 1), ("a" * 161, 2), ("a" * 306, 2), ("a" * 307, 3),
    ("€" * 80, 1), ("€" * 81, 2),
    ("é" * 160, 1),
    ("🙂" * 35, 1), ("🙂" * 36, 2), ("ł" * 70, 1), ("ł" * 71, 2), ("ł" * 134, 2), ("ł" * 135, 3),
])
def test_segments_are_counted_in_gsm7_or_ucs2_parts(text: str, segments: int) -> None:
    assert sms_segments(text) == segments


def test_the_seed_care_message_takes_two_segments_under_a_longer_program_name() -> None:
    text = ("Thank you for being part of {}. This is your monthly care message from our makers. "
            "We appreciate your continued support. Reply STOP anytime to opt out.")
    assert sms_segments(text.format("The Weft")) == 1
    assert sms_segments(text.format("Community Weft")) == 2


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_outside_quiet_hours_a_message_may_go_at_once() -> None:
    noon_in_new_york = at("2026-12-01 17:00")
    assert NIGHT.next_allowed(noon_in_new_york, (NEW_YORK,)) == noon_in_new_york


def test_in_quiet_hours_a_message_waits_until_nine_local() -> None:
    ten_pm_in_new_york = at("2026-12-02 03:00")
    assert NIGHT.next_allowed(ten_pm_in_new_york, (NEW_YORK,)) == at("2026-12-02 14:00")


def test_a_number_in_several_zones_waits_until_it_is_daytime_in_all_of_them() -> None:
    nine_am_in_new_york = at("2026-12-01 14:00")
    allowed = NIGHT.next_allowed(nine_am_in_new_york, (NEW_YORK, LOS_ANGELES, HONOLULU))
    assert allowed == at("2026-12-01 19:00")  # 09:00 in Honolulu, 14:00 in New York


def test_quiet_hours_follow_daylight_saving_time() -> None:
    the_day_before = NIGHT.next_allowed(at("2026-03-07 13:30"), (NEW_YORK,))
    the_day_clocks_go_forward = NIGHT.next_allowed(at("2026-03-08 13:30"), (NEW_YORK,))
    assert the_day_before == at("2026-03-07 14:00")  # 08:30 EST is still quiet
    assert the_day_clocks_go_forward == at("2026-03-08 13:30")  # 09:30 EDT is not


def test_zones_a_day_apart_still_share_a_daytime_window() -> None:
    zones = ("Pacific/Guam", "Pacific/Pago_Pago", NEW_YORK)
    assert NIGHT.next_allowed(at("2026-12-01 10:00"), zones) == at("2026-12-01 23:00")  # 09:00 in Guam


def test_zones_with_no_common_daytime_get_the_time_allowed_in_most_of_them() -> None:
    zones = ("Pacific/Guam", "Pacific/Pago_Pago", "Europe/London")
    allowed = NIGHT.next_allowed(at("2026-12-01 10:00"), zones)
    quiet_in = [z for z in zones if NIGHT.is_quiet(allowed.astimezone(ZoneInfo(z)).time())]
    assert len(quiet_in) == 1


def test_no_quiet_hours_means_any_time() -> None:
    midnight = at("2026-12-01 05:00")
    assert QuietHours.none().next_allowed(midnight, (NEW_YORK,)) == midnight
    assert QuietHours.parse("00:00-00:00").next_allowed(midnight, (NEW_YORK,)) == midnight


@pytest.mark.parametrize("text", ["9-21", "21:00", "25:00-09:00", "21:00-09:60", ""])
def test_a_malformed_quiet_hours_window_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="21:00-09:00"):
        QuietHours.parse(text)


SUBSCRIBED, NONE, PENDING, OPTED_OUT = Consent.SUBSCRIBED, Consent.NONE, Consent.PENDING, Consent.OPTED_OUT
P = PaymentStatus


@pytest.mark.parametrize(("consent", "payments", "valid", "reason"), [
    (SUBSCRIBED, {P.COMPLETED}, True, None),
    (SUBSCRIBED, {P.ACTIVE}, True, None),
    (SUBSCRIBED, {P.CANCELLED}, True, None),
    (SUBSCRIBED, {P.PAST_DUE, P.COMPLETED}, True, None),
    (SUBSCRIBED, set(), True, SkipReason.NOT_A_MEMBER),
    (SUBSCRIBED, {P.PAST_DUE}, True, SkipReason.PAYMENT_NOT_ACTIVE),
    (SUBSCRIBED, {P.FAILED}, True, SkipReason.PAYMENT_NOT_ACTIVE),
    (SUBSCRIBED, {P.PENDING, P.PROCESSING, P.EXPIRED}, True, SkipReason.PAYMENT_NOT_ACTIVE),
    (OPTED_OUT, {P.ACTIVE}, True, SkipReason.OPTED_OUT),
    (NONE, {P.COMPLETED}, True, SkipReason.NO_CONSENT),
    (PENDING, {P.COMPLETED}, True, SkipReason.NO_CONSENT),
    (SUBSCRIBED, {P.ACTIVE}, False, SkipReason.INVALID_NUMBER),
    (OPTED_OUT, set(), True, SkipReason.OPTED_OUT),
])
def test_care_eligibility(consent: Consent, payments: set[PaymentStatus], valid: bool,
                          reason: SkipReason | None) -> None:
    assert care_skip_reason(consent, frozenset(payments), valid) is reason


def test_only_the_care_message_goes_in_the_broadcast_lane() -> None:
    assert lane_of(MessageKind.CARE) is Lane.BROADCAST
    assert {lane_of(k) for k in MessageKind if k is not MessageKind.CARE} == {Lane.PRIORITY}


def test_the_care_key_is_the_month_and_the_number() -> None:
    month = CareMonth.parse("2026-12")
    assert month.message_key("+14155550123") == "care:2026-12:+14155550123"
    assert (month.campaign_id, CareMonth.of(at("2027-01-31 23:59")).value) == ("care-2026-12", "2027-01")


@pytest.mark.parametrize("text", ["2026-13", "26-12", "2026-1", "december"])
def test_a_malformed_month_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="2026-12"):
        CareMonth.parse(text)


def test_a_long_key_is_shortened_to_a_digest_that_stays_unique() -> None:
    long_a, long_b = "a" * 128, "a" * 127 + "b"
    assert outbox_key("reply", "abc") == "reply:abc"
    assert len(outbox_key("reply", long_a)) <= 64
    assert outbox_key("reply", long_a) != outbox_key("reply", long_b)
    assert outbox_key("reply", long_a) == outbox_key("reply", long_a)

