from __future__ import annotations

from datetime import datetime

from weft.application.unit_of_work import OutboxEntry, Transaction
from weft.domain.journey import AuditEntry, Journey, Step
from weft.domain.messages import DeliveryStatus


def audit_step(journey: Journey, phone: str, step: Step) -> AuditEntry:
    record = journey.steps[step]
    suffix = ".queued" if record.waiting else "" if record.ok else ".failed"
    return AuditEntry(action=f"journey.{step.value}{suffix}", at=record.at, phone=phone, payment_id=journey.payment_id,
                      details={"journey_id": journey.id, "detail": record.detail})


def apply_sms_entry(journey: Journey, entry: OutboxEntry, now: datetime) -> bool:
    """Bring the journey's SMS step in line with its outbox message; True when the step changed."""
    status, kind = entry.status, entry.message.kind.value
    record = journey.steps.get(Step.SMS_SENT)
    if status is DeliveryStatus.SENT:
        journey.done(Step.SMS_SENT, now, f"{kind} sent")
    elif status is DeliveryStatus.SUPPRESSED:
        journey.done(Step.SMS_SENT, now, f"skipped: {entry.error}")
    elif status in (DeliveryStatus.FAILED, DeliveryStatus.EXPIRED):
        journey.fail(Step.SMS_SENT, now, entry.error or status.value)
    elif entry.error:
        if record is not None and not record.ok and not record.waiting:
            return False  # already reported as failing; the outbox keeps trying
        journey.fail(Step.SMS_SENT, now, f"{entry.error} (still trying)", transient=True)
    elif record is not None and record.waiting:
        return False
    else:
        journey.wait(Step.SMS_SENT, now, f"{kind} queued")
    return True


def report_sms_outcome(tx: Transaction, entry: OutboxEntry, now: datetime) -> None:
    """The outbox has news of a journey's text: record it on the journey step and let the journey move on."""
    journey = tx.journeys.get(entry.message.journey_id or "")
    if journey is None or journey.succeeded(Step.SMS_SENT) or not apply_sms_entry(journey, entry, now):
        return
    tx.journeys.save(journey)
    tx.audit.add(audit_step(journey, entry.message.to.e164, Step.SMS_SENT))
    tx.journeys.wake(journey.id, now)
