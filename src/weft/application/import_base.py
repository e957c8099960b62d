"""Bringing an existing organisers' base into Weft once: its numbers and payments become Weft's, nothing is guessed,
and running it again changes nothing."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from datetime import datetime

import attrs
from email_validator import EmailNotValidError, validate_email

from weft.application.phone_numbers import normalise_phone
from weft.application.ports import BaseNumberRow, BasePaymentRow, Clock, OrganiserBase
from weft.application.unit_of_work import Store, Transaction
from weft.domain.errors import InvalidPhoneNumber
from weft.domain.journey import AuditEntry
from weft.domain.keywords import Keyword, parse_keyword
from weft.domain.payment import PAID_UP, Payment
from weft.domain.phone import PhoneNumber
from weft.domain.subscriber import Consent, Subscriber

REASON = "imported from Airtable"


@attrs.define
class ImportReport:
    numbers: int = 0
    opted_out: int = 0
    payments: int = 0
    memberships: int = 0
    already_in_weft: int = 0
    problems: list[str] = attrs.field(factory=list)
    dry_run: bool = False


class ImportFromBase:
    """`weft airtable import`: read both tables, then create in one transaction what Weft does not hold yet."""

    def __init__(self, base: OrganiserBase, store: Store, clock: Clock, join_words: Iterable[str]) -> None:
        self._base, self._store, self._clock = base, store, clock
        self._join_words = tuple(join_words)

    async def __call__(self, dry_run: bool = False) -> ImportReport:
        numbers, payments = await self._base.read_numbers(), await self._base.read_payments()
        report = ImportReport(dry_run=dry_run)
        subscribers = self._subscribers(numbers, report)
        paid = _payments(payments, report)
        now = self._clock.now()
        return await self._store.transaction(lambda tx: _apply(tx, subscribers, paid, report, now))

    def _subscribers(self, rows: list[BaseNumberRow], report: ImportReport) -> list[Subscriber]:
        valid = [(row, phone) for row in rows if (phone := _phone(row.row_id, row.phone, report))]
        repeated = _repeated([phone.e164 for _, phone in valid], "number", report)
        return [self._subscriber(row, phone) for row, phone in valid if phone.e164 not in repeated]

    def _subscriber(self, row: BaseNumberRow, phone: PhoneNumber) -> Subscriber:
        at = row.created or self._clock.now()
        subscriber = Subscriber.first_contact(phone, at)
        keyword = parse_keyword(row.message, self._join_words).keyword if row.message else Keyword.NONE
        if row.message:
            subscriber.record_inbound(row.message, at)
        if keyword is Keyword.OPT_OUT or row.consent is Consent.OPTED_OUT:
            subscriber.opt_out(at, None, REASON)
        elif row.consent is Consent.SUBSCRIBED or keyword in (Keyword.JOIN, Keyword.OPT_IN, Keyword.CONFIRM):
            subscriber.opt_in(at, None, REASON)
        return subscriber


def _apply(tx: Transaction, subscribers: list[Subscriber], payments: list[Payment], report: ImportReport,
           now: datetime) -> ImportReport:
    """Create what is new (unless a dry run); a number or payment Weft already holds is left as it is."""
    new = {s.phone.e164: s for s in subscribers}
    existing = tx.members.get_many([s.phone for s in subscribers] + [p.phone for p in payments])
    report.already_in_weft += sum(1 for phone in new if phone in existing)
    created = {phone: s for phone, s in new.items() if phone not in existing}
    fresh = [p for p in payments if tx.payments.by_session(p.checkout_session_id or "") is None]
    report.already_in_weft += len(payments) - len(fresh)
    members, touched = {**existing, **created}, set(created)
    ordered = sorted(fresh, key=lambda p: p.created_at)
    for payment in ordered:
        member = members.setdefault(payment.phone.e164, Subscriber.first_contact(payment.phone, payment.created_at))
        touched.add(payment.phone.e164)
        if payment.status in PAID_UP:
            member.complete_payment(payment, [p for p in ordered if p.phone == payment.phone], payment.updated_at)
            report.memberships += 1
    report.numbers = sum(1 for phone in members if phone not in existing)
    report.opted_out = sum(1 for s in created.values() if s.opted_out)
    report.payments = len(fresh)
    if not report.dry_run and (created or fresh):
        tx.members.save_many([members[phone] for phone in sorted(touched)])
        for payment in fresh:
            tx.payments.save(payment)
        tx.audit.add(AuditEntry("airtable.import", now, None, None, {
            "numbers": report.numbers, "payments": report.payments, "memberships": report.memberships}))
    return report


def _payments(rows: list[BasePaymentRow], report: ImportReport) -> list[Payment]:
    valid = [payment for row in rows if (payment := _payment(row, report)) is not None]
    repeated = _repeated([p.checkout_session_id or "" for p in valid], "Stripe Session ID", report)
    return [p for p in valid if p.checkout_session_id not in repeated]


def _payment(row: BasePaymentRow, report: ImportReport) -> Payment | None:
    phone = _phone(row.row_id, row.phone, report)
    problems = _payment_problems(row)
    report.problems.extend(f"Row {row.row_id}: {problem}." for problem in problems)
    if phone is None or problems or row.status is None or row.created is None:
        return None
    free = row.payment_type is None
    email = validate_email(row.email, check_deliverability=False).normalized.lower()
    return Payment(
        id="pay_import_" + hashlib.sha256(row.session_id.encode()).hexdigest()[:24], phone=phone, email=email,
        tier=row.tier.lower() or ("free" if free else "custom"), amount_cents=round((row.amount or 0) * 100),
        payment_type=row.payment_type, created_at=row.created, updated_at=row.created, status=row.status,
        checkout_session_id=row.session_id, customer_id=row.customer_id or None,
        subscription_id=row.subscription_id or None,
    )


def _payment_problems(row: BasePaymentRow) -> list[str]:
    problems = []
    if not row.session_id:
        problems.append("no Stripe Session ID, so it cannot be matched again; add one or leave it out")
    if row.status is None:
        problems.append(f"status {row.status_text!r} is not pending, completed, active, failed or cancelled")
    if row.payment_type is None and row.type_text:
        problems.append(f"payment type {row.type_text!r} is not one-time or monthly (empty for a free sign-up)")
    if row.payment_type is not None and row.amount is None:
        problems.append("a paid row without an Amount")
    if row.created is None:
        problems.append("no Created date")
    try:
        validate_email(row.email, check_deliverability=False)
    except EmailNotValidError:
        problems.append(f"email {row.email!r} is not an address")
    return problems


def _phone(row_id: str, raw: str, report: ImportReport) -> PhoneNumber | None:
    """The row's number when written in international form; anything else would be a guess, so it is reported."""
    if not raw.startswith("+"):
        report.problems.append(f"Row {row_id}: phone {raw!r} is not in international form (+14155550123).")
        return None
    try:
        return normalise_phone(raw, "ZZ")
    except InvalidPhoneNumber:
        report.problems.append(f"Row {row_id}: phone {raw!r} is not a valid number.")
        return None


def _repeated(keys: list[str], what: str, report: ImportReport) -> set[str]:
    """Keys on more than one row: none of those rows is imported, since which one is right is not Weft's guess."""
    repeated = {key for key, count in Counter(keys).items() if count > 1}
    report.problems.extend(f"The {what} {key} is on more than one row; none of them was imported."
                           for key in sorted(repeated))
    return repeated
