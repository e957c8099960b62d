from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
from dependency_injector.wiring import Provide, inject
from starlette.authentication import requires
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from weft.application.delivery_stats import delivery_stats as stats_of
from weft.application.paging import Position, after_of, limit_of
from weft.application.phone_numbers import normalise_phone
from weft.application.ports import Clock
from weft.application.run_journeys import RetryJourney
from weft.application.sync_messages import SyncProviderMessages
from weft.application.unit_of_work import OutboxEntry, ReceivedEvent
from weft.application.views import MemberQuery, Views
from weft.config import Settings
from weft.domain.errors import ProviderUnavailable
from weft.domain.journey import Journey
from weft.domain.payment import Payment
from weft.domain.subscriber import Consent, Subscriber


@requires("admin", status_code=401)
@inject
async def list_subscribers(
    request: Request, views: Views = Provide["views"], settings: Settings = Provide["settings"]
) -> JSONResponse:
    after, limit = page_args(request)
    page = await views.subscribers(member_query(request, settings), after, limit)
    return JSONResponse({"subscribers": [subscriber_json(s) for s in page.items], "next": page.next})


@requires("admin", status_code=401)
@inject
async def show_subscriber(
    request: Request, views: Views = Provide["views"], settings: Settings = Provide["settings"]
) -> JSONResponse:
    phone = normalise_phone(request.path_params["phone"], settings.default_region)
    detail = await views.subscriber_detail(phone)
    if detail is None:
        raise HTTPException(404, f"no subscriber with phone {phone.masked}")
    return JSONResponse({
        **subscriber_json(detail.subscriber),
        "consent_history": [plain({"consent": c.consent.value, "at": c.at, "message_id": c.message_id,
                                   "reason": c.reason}) for c in detail.consent_history],
        "inbound": [plain(attrs.asdict(m)) for m in detail.inbound],
        "outbound": [outbox_json(e) for e in detail.outbound],
    })


@requires("admin", status_code=401)
@inject
async def list_messages(
    request: Request, views: Views = Provide["views"], settings: Settings = Provide["settings"]
) -> JSONResponse:
    page = await views.outbox(failed_only(request), *page_args(request))
    return JSONResponse({"messages": [outbox_json(e) for e in page.items], "next": page.next})


MAX_STATS_HOURS = 24 * 31


@requires("admin", status_code=401)
@inject
async def delivery_stats(
    request: Request, views: Views = Provide["views"], clock: Clock = Provide["clock"],
    settings: Settings = Provide["settings"],
) -> JSONResponse:
    """SMS and email over the last `hours` (default 24), in hourly buckets: pending, sent, delivered, failed and
    the success rate."""
    raw = request.query_params.get("hours", "24")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_STATS_HOURS:
        raise HTTPException(400, f"hours must be a whole number from 1 to {MAX_STATS_HOURS}, not {raw[:20]!r}")
    hours, now = int(raw), clock.now()
    window = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1 - hours)
    return JSONResponse(stats_of(await views.delivery_outcomes(window), now, hours))


@requires("admin", status_code=401)
@inject
async def sync_bird(
    request: Request, sync: SyncProviderMessages = Provide["sync_bird"], settings: Settings = Provide["settings"],
) -> JSONResponse:
    """Run the Bird automation sync now and say what it found (409 while another process runs it)."""
    if not settings.bird_sync_available:
        raise HTTPException(409, "the Bird sync needs BIRD_API_KEY, BIRD_WORKSPACE_ID and BIRD_CHANNEL_ID")
    try:
        summary = await sync()
    except ProviderUnavailable as exc:
        raise HTTPException(503, f"Bird could not be read, nothing was changed past the pages already read: {exc}"
                            ) from exc
    return JSONResponse(summary.as_json(), status_code=409 if summary.busy else 200)


@requires("admin", status_code=401)
@inject
async def airtable_status(
    request: Request, views: Views = Provide["views"], settings: Settings = Provide["settings"],
) -> JSONResponse:
    """The copies waiting for the organisers' Airtable base, the last push that landed and the last error."""
    if not settings.airtable_configured:
        return JSONResponse({"configured": False})
    found = await views.mirror_status()
    backlog = found.backlog
    return JSONResponse({"configured": True, **plain({
        "waiting": backlog.waiting, "failing": backlog.failing, "oldest_change_at": backlog.oldest,
        "last_pushed_at": found.last_pushed_at, "last_error": backlog.last_error,
        "last_error_at": backlog.last_error_at,
    })})


def subscriber_json(s: Subscriber) -> dict[str, Any]:
    return plain({
        "phone": s.phone.e164, "consent": s.consent.value, "membership": s.membership.value,
        "paid_tier": s.paid_tier, "tier": s.tier.label, "consent_changed_at": s.consent_changed_at,
        "consent_message_id": s.consent_message_id, "last_message": s.last_message,
        "last_message_at": s.last_message_at, "created_at": s.created_at, "updated_at": s.updated_at,
    })


def outbox_json(e: OutboxEntry) -> dict[str, Any]:
    m = e.message
    return plain({
        "id": m.id, "to": m.to.e164, "text": m.text, "kind": m.kind.value, "status": e.status.value,
        "attempts": e.attempts, "provider_id": e.provider_id, "error": e.error,
        "reply_route": m.reply_route, "created_at": e.created_at, "sent_at": e.sent_at,
        "next_attempt_at": e.next_attempt_at, "lane": m.lane.name.lower(), "journey_id": m.journey_id,
        "campaign_id": m.campaign_id, "first_attempt_at": e.first_attempt_at, "in_doubt": e.in_doubt,
        "possible_duplicate": e.possible_duplicate,
        "delivery": {"state": e.delivery_state.value if e.delivery_state else None,
                     "error_code": e.delivery_error_code,
                     "at": e.delivery_at.isoformat() if e.delivery_at else None},
    })


def plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()}


@requires("admin", status_code=401)
@inject
async def list_payments(
    request: Request, views: Views = Provide["views"], settings: Settings = Provide["settings"]
) -> JSONResponse:
    page = await views.payments(*page_args(request))
    return JSONResponse({"payments": [payment_json(p) for p in page.items], "next": page.next})


@requires("admin", status_code=401)
@inject
async def list_payment_events(
    request: Request, views: Views = Provide["views"], settings: Settings = Provide["settings"]
) -> JSONResponse:
    """Payment events received but not applied yet, oldest first, with their last error (?all=true: every one)."""
    pending_only = request.query_params.get("all", "").lower() not in ("1", "true", "yes")
    page = await views.received_events(pending_only, *page_args(request))
    return JSONResponse({"events": [received_event_json(r) for r in page.items], "next": page.next})


@requires("admin", status_code=401)
@inject
async def list_journeys(
    request: Request, views: Views = Provide["views"], settings: Settings = Provide["settings"]
) -> JSONResponse:
    page = await views.journeys(failed_only(request), *page_args(request))
    return JSONResponse({"journeys": [journey_json(j) for j in page.items], "next": page.next})


@requires("admin", status_code=401)
@inject
async def list_audit(
    request: Request, views: Views = Provide["views"], settings: Settings = Provide["settings"]
) -> JSONResponse:
    since = since_of(request.query_params.get("since"))
    page = await views.audit_log(request.query_params.get("action") or None, since, *page_args(request))
    return JSONResponse({"entries": [plain(attrs.asdict(r.entry)) for r in page.items], "next": page.next})


@requires("admin", status_code=401)
@inject
async def retry_journey(
    request: Request, retry: RetryJourney = Provide["retry_journey"], settings: Settings = Provide["settings"]
) -> JSONResponse:
    retried = await retry(request.path_params["journey_id"])
    return JSONResponse({"journey": journey_json(retried.journey), "retrying": retried.steps}, status_code=202)


def page_args(request: Request, default_limit: int = 50) -> tuple[Position | None, int]:
    """`after` (a cursor from the previous page's `next`) and `limit` (1 to 500) of a list request."""
    return after_of(request.query_params.get("after")), limit_of(request.query_params.get("limit"), default_limit)


def failed_only(request: Request) -> bool:
    """`failed`: `1`, `true` or `yes` lists only what failed; `0`, `false`, `no` or nothing lists everything."""
    value = request.query_params.get("failed", "").strip().lower()
    if value not in ("1", "true", "yes", "0", "false", "no", ""):
        raise HTTPException(400, "failed must be true or false")
    return value in ("1", "true", "yes")


def member_query(request: Request, settings: Settings) -> MemberQuery:
    """`q` (a phone in any format, or an email), `consent` and `tier` of a member search."""
    params = request.query_params
    q = (params.get("q") or "").strip()
    phone = normalise_phone(q, settings.default_region) if q and "@" not in q else None
    consent = params.get("consent") or None
    if consent is not None and consent not in {c.value for c in Consent}:
        raise HTTPException(400, f"consent must be one of {', '.join(c.value for c in Consent)}")
    return MemberQuery(phone=phone, email=q.lower() if "@" in q else None,
                       consent=Consent(consent) if consent else None, tier=params.get("tier") or None)


def payment_json(p: Payment) -> dict[str, Any]:
    return plain({
        "id": p.id, "phone": p.phone.e164, "email": p.email, "tier": p.tier, "amount_cents": p.amount_cents,
        "payment_type": p.payment_type.value if p.payment_type else None, "status": p.status.value,
        "checkout_session_id": p.checkout_session_id, "customer_id": p.customer_id,
        "subscription_id": p.subscription_id, "phone_proven": p.phone_proven, "created_at": p.created_at,
        "updated_at": p.updated_at,
    })


def received_event_json(r: ReceivedEvent) -> dict[str, Any]:
    return plain({
        "id": r.event.id, "type": r.event.type, "object_id": r.event.object.get("id"), "status": r.status,
        "received_at": r.received_at, "attempts": r.attempts, "next_attempt_at": r.next_attempt_at,
        "last_error": r.error, "processed_at": r.processed_at,
    })


def journey_json(j: Journey) -> dict[str, Any]:
    return plain({
        "id": j.id, "payment_id": j.payment_id, "started_at": j.started_at, "completed_at": j.completed_at,
        "greeting": j.greeting.value, "steps": {s.value: plain(attrs.asdict(r)) for s, r in j.steps.items()},
        "failed_steps": {s.value: error for s, error in j.failed_steps.items()},
    })


def since_of(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    except ValueError:
        raise HTTPException(400, f"since must be an ISO 8601 time, not {value!r}") from None
    except OverflowError:
        raise HTTPException(400, f"since is outside the years 1 to 9999 in UTC: {value!r}") from None
