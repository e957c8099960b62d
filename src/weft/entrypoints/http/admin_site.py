"""The organisers' admin site: sign in, then the overview, members, journeys, campaigns, delivery and the audit
log, rendered on the server (Jinja2, plain CSS, the charts as SVG)."""

from __future__ import annotations

import asyncio
import functools
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from dependency_injector.wiring import Provide, inject
from starlette.authentication import requires
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.templating import Jinja2Templates

from weft.application.dashboard import Dashboard
from weft.application.monthly_care import PreviewMonthlyCare, StartMonthlyCare
from weft.application.phone_numbers import normalise_phone
from weft.application.ports import Clock
from weft.application.run_journeys import RetryJourney
from weft.application.views import Views
from weft.config import Settings
from weft.domain.campaign import CampaignState
from weft.domain.care import CareMonth
from weft.domain.errors import JourneyBusy
from weft.domain.membership import dollars
from weft.entrypoints.http import charts
from weft.entrypoints.http.admin import member_query, page_args, since_of
from weft.entrypoints.http.admin_auth import (
    COOKIE,
    AdminSessions,
    SignInThrottle,
    cookie_is_secure,
    session_of,
)
from weft.entrypoints.http.pages import TEMPLATES_DIR

PAGE = functools.partial(requires, "admin", redirect="admin-sign-in")
LATEST_FAILURES = 20
"""The delivery page's latest failures: texts that never reached the phone, newest first."""


def site_routes() -> list[BaseRoute]:
    return [
        Route("/sign-in", sign_in_form, methods=["GET"], name="admin-sign-in"),
        Route("/sign-in", sign_in, methods=["POST"]),
        Route("/sign-out", sign_out, methods=["POST"], name="admin-sign-out"),
        Route("/", overview, methods=["GET"], name="admin-overview"),
        Route("/members", members, methods=["GET"], name="admin-members"),
        Route("/members/{phone}", member, methods=["GET"], name="admin-member"),
        Route("/journeys", journeys, methods=["GET"], name="admin-journeys"),
        Route("/journeys/{journey_id}/retry", retry_journey, methods=["POST"], name="admin-retry"),
        Route("/campaigns", campaigns, methods=["GET"], name="admin-campaigns"),
        Route("/campaigns/preview", preview_campaign, methods=["POST"], name="admin-campaign-preview"),
        Route("/campaigns/send", send_campaign, methods=["POST"], name="admin-campaign-send"),
        Route("/delivery", delivery, methods=["GET"], name="admin-delivery"),
        Route("/audit", audit, methods=["GET"], name="admin-audit"),
    ]


@functools.cache
def templates() -> Jinja2Templates:
    found = Jinja2Templates(directory=TEMPLATES_DIR, context_processors=[_shared])
    found.env.filters["dollars"] = dollars
    found.env.filters["when"] = lambda at: at.strftime("%Y-%m-%d %H:%M") if at else "–"
    return found


def _shared(request: Request) -> dict[str, Any]:
    session = session_of(request)
    sessions: AdminSessions = request.app.state.admin_sessions
    return {"program": request.app.state.replies.program_name,
            "csrf": sessions.csrf_token(session) if session is not None else "", "signed_in": session is not None}


def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    response = templates().TemplateResponse(request, f"admin/{name}", context, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    return response


async def checked_form(request: Request) -> FormData:
    """The posted form, refused (403) when a signed-in browser's form lacks its CSRF token; bearer-token callers
    carry no ambient credential, so need none."""
    form = await request.form()
    session = session_of(request)
    sessions: AdminSessions = request.app.state.admin_sessions
    if session is not None and not sessions.csrf_ok(session, str(form.get("csrf", ""))):
        raise HTTPException(403, "This form has expired or did not come from the admin site; reload and try again.")
    return form


@inject
async def sign_in_form(request: Request, settings: Settings = Provide["settings"]) -> Response:
    if session_of(request) is not None:
        return RedirectResponse("/admin/", status_code=303)
    return render(request, "sign_in.html", {"enabled": bool(settings.admin_tokens), "error": None,
                                            "next": _safe_next(request, request.query_params.get("next"))})


@inject
async def sign_in(request: Request, settings: Settings = Provide["settings"],
                  sessions: AdminSessions = Provide["admin_sessions"],
                  throttle: SignInThrottle = Provide["sign_in_throttle"]) -> Response:
    client = request.client.host if request.client else "unknown"
    form = await request.form()
    target = _safe_next(request, str(form.get("next", "")))
    context = {"enabled": bool(settings.admin_tokens), "next": target}
    if not settings.admin_tokens:
        return render(request, "sign_in.html", {**context, "error": None}, status_code=403)
    if (wait := throttle.blocked(client)) > 0:
        error = f"Too many wrong tokens from this address. Try again in {int(wait) + 1} seconds."
        return render(request, "sign_in.html", {**context, "error": error}, status_code=429)
    token = str(form.get("token", "")).strip()
    if not sessions.token_matches(token):
        throttle.failed(client)
        return render(request, "sign_in.html", {**context, "error": "That token is not right."}, status_code=401)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, sessions.start(token), max_age=sessions.seconds, path="/", httponly=True,
                        samesite="strict", secure=cookie_is_secure(settings))
    return response


@PAGE()
@inject
async def sign_out(request: Request, settings: Settings = Provide["settings"]) -> Response:
    await checked_form(request)
    response = RedirectResponse("/admin/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=cookie_is_secure(settings))
    return response


@PAGE()
@inject
async def overview(request: Request, dashboard: Dashboard = Provide["dashboard"], views: Views = Provide["views"],
                   clock: Clock = Provide["clock"], settings: Settings = Provide["settings"]) -> Response:
    now = clock.now()
    figures, hours, emails, campaigns, alerts = await asyncio.gather(
        dashboard.member_figures(now - timedelta(days=29), now),
        dashboard.delivery(now - timedelta(hours=23), now, hourly=True),
        dashboard.emails(now - timedelta(hours=24)), views.campaigns(limit=1), views.active_alerts())
    month = CareMonth.of(now).value
    care = campaigns.items[0] if campaigns.items and campaigns.items[0].campaign.month == month else None
    mirror = await views.mirror_status() if settings.airtable_configured else None
    return render(request, "overview.html", {
        "figures": figures, "care": care, "month": month, "mirror": mirror, "alerts": alerts,
        "sms_rate": charts.overall_rate(hours), "delivery_chart": charts.delivery_svg(hours, hourly=True),
        "email_rate": emails.success_rate,
        "joins_chart": charts.days_svg(figures.joins, figures.opt_outs),
    })


@PAGE()
@inject
async def members(request: Request, views: Views = Provide["views"],
                  settings: Settings = Provide["settings"]) -> Response:
    after, limit = page_args(request, default_limit=50)
    page = await views.subscribers(member_query(request, settings), after, limit)
    params = {k: v for k, v in request.query_params.items() if k in ("q", "consent", "tier") and v}
    return render(request, "members.html", {
        "page": page, "params": params,
        "next_url": f"?{urlencode({**params, 'after': page.next})}" if page.next else None,
    })


@PAGE()
@inject
async def member(request: Request, views: Views = Provide["views"],
                 settings: Settings = Provide["settings"]) -> Response:
    detail = await views.subscriber_detail(normalise_phone(request.path_params["phone"], settings.default_region))
    if detail is None:
        raise HTTPException(404, "There is no member with that number.")
    return render(request, "member.html", {"detail": detail})


@PAGE()
@inject
async def journeys(request: Request, views: Views = Provide["views"]) -> Response:
    after, limit = page_args(request, default_limit=50)
    failed_only = request.query_params.get("all") != "1"
    page = await views.journeys(failed_only, after, limit)
    query = {"all": "1"} if not failed_only else {}
    return render(request, "journeys.html", {
        "page": page, "failed_only": failed_only, "notice": request.query_params.get("notice"),
        "next_url": f"?{urlencode({**query, 'after': page.next})}" if page.next else None,
    })


@PAGE()
@inject
async def retry_journey(request: Request, retry: RetryJourney = Provide["retry_journey"]) -> Response:
    await checked_form(request)
    try:
        retried = await retry(request.path_params["journey_id"])
    except JourneyBusy:
        notice = "A worker is running this journey right now; try again in a moment."
    else:
        notice = f"Retrying {', '.join(retried.steps) or 'nothing (no step had failed)'}."
    return RedirectResponse(f"/admin/journeys?{urlencode({'notice': notice})}", status_code=303)


@PAGE()
@inject
async def campaigns(request: Request, views: Views = Provide["views"], clock: Clock = Provide["clock"]) -> Response:
    """Each month's care message with its progress; the page refreshes itself while one is still going out."""
    after, limit = page_args(request, default_limit=12)
    page = await views.campaigns(after, limit)
    running = any(s.campaign.state is not CampaignState.FINISHED for s in page.items)
    return render(request, "campaigns.html", {
        "page": page, "running": running, "month": CareMonth.of(clock.now()).value,
        "notice": request.query_params.get("notice"),
        "next_url": f"?{urlencode({'after': page.next})}" if page.next else None,
    })


@PAGE()
@inject
async def preview_campaign(request: Request,
                           preview: PreviewMonthlyCare = Provide["preview_monthly_care"]) -> Response:
    """The dry run, then the confirmation step: nothing is sent until the organiser confirms."""
    await checked_form(request)
    return render(request, "campaign_preview.html", {"preview": await preview(None)})


@PAGE()
@inject
async def send_campaign(request: Request, start: StartMonthlyCare = Provide["start_monthly_care"]) -> Response:
    form = await checked_form(request)
    if form.get("confirm") != "yes":
        raise HTTPException(400, "Confirm the send from the preview page first.")
    summary = await start(None)
    notice = (f"This month's care message ({summary.campaign.month}) has started: the table below follows it as "
              f"it goes out.")
    return RedirectResponse(f"/admin/campaigns?{urlencode({'notice': notice})}", status_code=303)


@PAGE()
@inject
async def delivery(request: Request, dashboard: Dashboard = Provide["dashboard"], views: Views = Provide["views"],
                   clock: Clock = Provide["clock"]) -> Response:
    now = clock.now()
    hours, days, failures = await asyncio.gather(
        dashboard.delivery(now - timedelta(hours=23), now, hourly=True),
        dashboard.delivery(now - timedelta(days=29), now, hourly=False),
        views.outbox(failed_only=True, limit=LATEST_FAILURES))
    return render(request, "delivery.html", {
        "hourly": charts.delivery_svg(hours, hourly=True), "daily": charts.delivery_svg(days, hourly=False),
        "hours": hours, "days": days, "failures": failures.items,
    })


@PAGE()
@inject
async def audit(request: Request, views: Views = Provide["views"]) -> Response:
    after, limit = page_args(request, default_limit=100)
    action = request.query_params.get("action") or None
    since = since_of(request.query_params.get("since"))
    page = await views.audit_log(action, since, after, limit)
    params = {k: v for k, v in request.query_params.items() if k in ("action", "since") and v}
    return render(request, "audit.html", {
        "page": page, "params": params,
        "next_url": f"?{urlencode({**params, 'after': page.next})}" if page.next else None,
    })


def _safe_next(request: Request, value: str | None) -> str:
    """Where to go after signing in: a page of this site's admin (a full URL only on this host), never elsewhere."""
    parts = urlsplit(value or "")
    if parts.netloc and parts.netloc != request.url.netloc:
        return "/admin/"
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return path if path.startswith("/admin") and not path.startswith("//") else "/admin/"
