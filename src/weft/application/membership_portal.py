from __future__ import annotations

import enum
from urllib.parse import quote

import attrs

from weft.application.link_tokens import LinkTokens
from weft.application.phone_numbers import normalise_phone
from weft.application.ports import Clock, PaymentGateway
from weft.application.unit_of_work import Store
from weft.domain.errors import InvalidPhoneNumber
from weft.domain.membership import live_plan
from weft.domain.payment import Payment
from weft.domain.phone import PhoneNumber

MEMBERSHIP_LINK_SECONDS = 15 * 60
"""How long the link a MEMBERSHIP reply carries leads to the portal: it opens the member's billing, so not long."""


def membership_links(secret: str, ttl_seconds: int, clock: Clock) -> LinkTokens:
    """Tokens for MEMBERSHIP links, signed under their own key: a join link can never open the portal."""
    return LinkTokens(f"{secret}|membership-portal", ttl_seconds, clock)


class PortalOutcome(enum.Enum):
    OPENED = "opened"
    EXPIRED = "expired"
    """The link's token is not valid for this number, or no longer."""
    NO_PLAN = "no_plan"


@attrs.frozen
class PortalVisit:
    outcome: PortalOutcome
    url: str | None = None


class OpenMembershipPortal:
    """Follow a MEMBERSHIP link: a valid token for a number with a live subscription opens the provider's customer
    portal for that subscription's customer; nothing else does."""

    def __init__(self, store: Store, gateway: PaymentGateway, links: LinkTokens, public_url: str,
                 default_region: str = "US") -> None:
        self._store, self._gateway, self._links = store, gateway, links
        self._public_url, self._region = public_url.rstrip("/"), default_region

    async def __call__(self, phone_text: str, token: str) -> PortalVisit:
        phone = self._phone(phone_text)
        if phone is None or not self._links.verify(token, phone):
            return PortalVisit(PortalOutcome.EXPIRED)
        plan = await self._plan(phone)
        if plan is None or not plan.customer_id:
            return PortalVisit(PortalOutcome.NO_PLAN)
        url = await self._gateway.create_portal_session(plan.customer_id, self.return_url(phone))
        return PortalVisit(PortalOutcome.OPENED, url)

    def return_url(self, phone: PhoneNumber) -> str:
        return f"{self._public_url}/?phone={quote(phone.e164, safe='')}"

    async def _plan(self, phone: PhoneNumber) -> Payment | None:
        return live_plan(await self._store.transaction(lambda tx: tx.payments.of_member(phone)))

    def _phone(self, text: str) -> PhoneNumber | None:
        try:
            return normalise_phone(text, self._region)
        except InvalidPhoneNumber:
            return None
