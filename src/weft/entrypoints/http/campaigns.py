from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide, inject
from starlette.authentication import requires
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from weft.application.monthly_care import CarePreview, PreviewMonthlyCare, StartMonthlyCare
from weft.application.views import CampaignSummary, Views
from weft.config import Settings
from weft.domain.care import CareMonth
from weft.domain.errors import UnknownCampaign
from weft.domain.messages import DeliveryStatus
from weft.entrypoints.http.admin import page_args, plain

TRUE = ("1", "true", "yes")


@requires("admin", status_code=401)
@inject
async def send_monthly_messages(
    request: Request, start: StartMonthlyCare = Provide["start_monthly_care"],
    preview: PreviewMonthlyCare = Provide["preview_monthly_care"], settings: Settings = Provide["settings"],
) -> JSONResponse:
    """`?dryRun=true`: what this month's run would do, nothing sent. Otherwise start or resume this month's run
    (once per member per month, so calling it again is harmless) and answer its summary at once."""
    month = _month(request.query_params.get("month"))
    if request.query_params.get("dryRun", "").lower() in TRUE:
        return JSONResponse({"dry_run": True, **preview_json(await preview(month))})
    return JSONResponse({"campaign": campaign_json(await start(month))}, status_code=202)


@requires("admin", status_code=401)
@inject
async def list_campaigns(
    request: Request, views: Views = Provide["views"], settings: Settings = Provide["settings"]
) -> JSONResponse:
    after, limit = page_args(request, default_limit=24)
    page = await views.campaigns(after, limit)
    return JSONResponse({"campaigns": [campaign_json(c) for c in page.items], "next": page.next})


@requires("admin", status_code=401)
@inject
async def show_campaign(
    request: Request, views: Views = Provide["views"], settings: Settings = Provide["settings"]
) -> JSONResponse:
    campaign_id = request.path_params["campaign_id"]
    summary = await views.campaign(campaign_id)
    if summary is None:
        raise UnknownCampaign(f"no campaign {campaign_id[:40]!r}")
    return JSONResponse({"campaign": campaign_json(summary)})


def campaign_json(s: CampaignSummary) -> dict[str, Any]:
    c = s.campaign
    return plain({
        "id": c.id, "month": c.month, "state": c.state.value, "started_at": c.created_at,
        "finished_at": c.finished_at, "eligible": s.eligible, "sent": s.sent, "failed": s.failed,
        "pending": s.pending, "suppressed": s.counts[DeliveryStatus.SUPPRESSED],
        "expired": s.counts[DeliveryStatus.EXPIRED], "possible_duplicates": s.counts.possible_duplicates,
        "skipped": dict(c.skipped), "rate_per_second": s.rate_per_second, "passes": c.passes, "text": c.text,
    })


def preview_json(p: CarePreview) -> dict[str, Any]:
    return {"month": p.month, "eligible": p.eligible, "skipped": p.skipped, "recipients": p.recipients}


def _month(value: str | None) -> CareMonth | None:
    if not value:
        return None
    try:
        return CareMonth.parse(value)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
