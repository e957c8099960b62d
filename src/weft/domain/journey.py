from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import attrs

from weft.domain.membership import Greeting


class Step(enum.Enum):
    PAYMENT_PROCESSED = "payment_processed"
    DATABASE_UPDATED = "database_updated"
    EMAIL_SENT = "email_sent"
    SMS_SENT = "sms_sent"
    CUSTOMER_ACCESS_GRANTED = "customer_access_granted"


STEPS = tuple(Step)


@attrs.frozen
class StepRecord:
    at: datetime
    ok: bool
    detail: str = ""
    transient: bool = False
    """A failure that may pass (provider down, rate limited): worth running the step again later."""
    waiting: bool = False
    """Handed on (the welcome text is in the outbox) and its outcome not known yet: neither done nor failed."""


@attrs.define
class Journey:
    """The post-payment journey of one purchase: each step with its time, and the steps that failed and why."""

    id: str
    payment_id: str
    started_at: datetime
    steps: dict[Step, StepRecord] = attrs.field(factory=dict)
    completed_at: datetime | None = None
    greeting: Greeting = Greeting.WELCOME
    """What the member is told: decided when the payment settled, so a retry or a second worker agrees."""

    def done(self, step: Step, at: datetime, detail: str = "") -> None:
        self.steps[step] = StepRecord(at, True, detail)
        self._maybe_complete(at)

    def fail(self, step: Step, at: datetime, error: str, transient: bool = False) -> None:
        self.steps[step] = StepRecord(at, False, error, transient)

    def wait(self, step: Step, at: datetime, detail: str) -> None:
        """The step was handed on; its outcome comes later through done() or fail()."""
        self.steps[step] = StepRecord(at, False, detail, waiting=True)

    def waiting_since(self, step: Step) -> datetime | None:
        record = self.steps.get(step)
        return record.at if record is not None and record.waiting else None

    @property
    def worth_retrying(self) -> bool:
        """Some step failed for a reason that may pass."""
        return any(not r.ok and r.transient and not r.waiting for r in self.steps.values())

    def succeeded(self, step: Step) -> bool:
        record = self.steps.get(step)
        return record is not None and record.ok

    def to_run(self) -> list[Step]:
        """Steps not yet done nor waiting, in order: pending ones and failed ones (a retry re-runs only these)."""
        return [step for step in STEPS if not self.succeeded(step) and self.waiting_since(step) is None]

    @property
    def failed_steps(self) -> dict[Step, str]:
        return {step: r.detail for step, r in self.steps.items() if not r.ok and not r.waiting}

    def _maybe_complete(self, at: datetime) -> None:
        if self.completed_at is None and all(self.succeeded(step) for step in STEPS):
            self.completed_at = at


@attrs.frozen
class AuditEntry:
    """One audited fact: what happened, to which member and purchase, with details, and when."""

    action: str
    at: datetime
    phone: str | None = None
    payment_id: str | None = None
    details: dict[str, Any] = attrs.field(factory=dict)
