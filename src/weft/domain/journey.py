from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import attrs


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


@attrs.define
class Journey:
    """The post-payment journey of one purchase: each step with its time, and the steps that failed and why."""

    id: str
    payment_id: str
    started_at: datetime
    steps: dict[Step, StepRecord] = attrs.field(factory=dict)
    completed_at: datetime | None = None

    def done(self, step: Step, at: datetime, detail: str = "") -> None:
        self.steps[step] = StepRecord(at, True, detail)
        self._maybe_complete(at)

    def fail(self, step: Step, at: datetime, error: str, transient: bool = False) -> None:
        self.steps[step] = StepRecord(at, False, error, transient)

    @property
    def worth_retrying(self) -> bool:
        """Some step failed for a reason that may pass."""
        return any(not r.ok and r.transient for r in self.steps.values())

    def succeeded(self, step: Step) -> bool:
        record = self.steps.get(step)
        return record is not None and record.ok

    def to_run(self) -> list[Step]:
        """Steps not yet done, in order: pending ones and failed ones (a retry re-runs only these)."""
        return [step for step in STEPS if not self.succeeded(step)]

    @property
    def failed_steps(self) -> dict[Step, str]:
        return {step: r.detail for step, r in self.steps.items() if not r.ok}

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
