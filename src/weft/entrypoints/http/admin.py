from __future__ import annotations

import hmac
from typing import Any

from dependency_injector.wiring import Provide, inject
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from weft.application.phone_numbers import normalise_phone
from weft.application.ports import OutboxEntry, Store
from weft.config import Settings
from weft.domain.subscriber import Subscriber


def require_admin(request: Request, settings: Settings) -> None:
    """401 unless the request carries the configured admin bearer token."""
    if not settings.admin_token:
        raise HTTPException(401, "admin API is disabled: set WEFT_ADMIN_TOKEN to enable it")
    supplied = request.headers.get("authorization", "")
    if not hmac.compare_digest(supplied.encode(), f"Bearer {settings.admin_token}".encode()):
        raise HTTPException(401, "missing or wrong bearer token")


@inject
async def list_subscribers(
    request: Request, store: Store = Provide["store"], settings: Settings = Provide["settings"]
) -> JSONResponse:
    require_admin(request, settings)
    return JSONResponse({"subscribers": [subscriber_json(s) for s in await store.subscribers()]})


@inject
async def show_subscriber(
    request: Request, store: Store = Provide["store"], settings: Settings = Provide["settings"]
) -> JSONResponse:
    require_admin(request, settings)
    phone = normalise_phone(request.path_params["phone"], settings.default_region)
    detail = await store.subscriber_detail(phone)
    if detail is None:
        raise HTTPException(404, f"no subscriber with phone {phone.masked}")
    return JSONResponse({
        **subscriber_json(detail["subscriber"]),
        "consent_history": [_plain(r) for r in detail["consent_history"]],
        "inbound": [_plain(r) for r in detail["inbound"]],
        "outbound": [outbox_json(e) for e in detail["outbound"]],
    })


@inject
async def list_messages(
    request: Request, store: Store = Provide["store"], settings: Settings = Provide["settings"]
) -> JSONResponse:
    require_admin(request, settings)
    return JSONResponse({"messages": [outbox_json(e) for e in await store.outbox()]})


def subscriber_json(s: Subscriber) -> dict[str, Any]:
    return _plain({
        "phone": s.phone.e164, "consent": s.consent.value, "membership": s.membership.value,
        "paid_tier": s.paid_tier, "consent_changed_at": s.consent_changed_at,
        "consent_message_id": s.consent_message_id, "last_message": s.last_message,
        "last_message_at": s.last_message_at, "created_at": s.created_at, "updated_at": s.updated_at,
    })


def outbox_json(e: OutboxEntry) -> dict[str, Any]:
    m = e.message
    return _plain({
        "id": m.id, "to": m.to.e164, "text": m.text, "kind": m.kind.value, "status": e.status.value,
        "attempts": e.attempts, "provider_id": e.provider_id, "error": e.error,
        "conversation_id": m.conversation_id, "created_at": e.created_at, "sent_at": e.sent_at,
        "next_attempt_at": e.next_attempt_at,
    })


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()}
