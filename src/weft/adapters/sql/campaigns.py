from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from weft.adapters.sql import schema as t
from weft.adapters.sql.members import dialect_insert
from weft.adapters.sql.queue import QueueTable
from weft.application.unit_of_work import Lease
from weft.domain.campaign import Campaign, CampaignState

CAMPAIGN_QUEUE = QueueTable(t.campaigns, "next_run_at")
_CONTENT = ("month", "text", "state", "cursor", "selected", "skipped", "passes", "created_at", "finished_at")


class SqlCampaigns:
    def __init__(self, connection: sa.Connection) -> None:
        self._c = connection
        self._insert = dialect_insert(connection.dialect.name)

    def get(self, campaign_id: str) -> Campaign | None:
        query = sa.select(t.campaigns).where(t.campaigns.c.id == campaign_id).with_for_update()
        row = self._c.execute(query).first()
        return None if row is None else campaign_from_row(row)

    def save(self, campaign: Campaign) -> None:
        values = campaign_values(campaign)
        statement = self._insert(t.campaigns).values(**values)
        self._c.execute(statement.on_conflict_do_update(
            index_elements=["id"], set_={name: values[name] for name in _CONTENT}))

    def schedule(self, campaign_id: str, at: datetime | None) -> None:
        CAMPAIGN_QUEUE.schedule(self._c, campaign_id, at)

    def wake(self, campaign_id: str, at: datetime) -> bool:
        return CAMPAIGN_QUEUE.wake(self._c, campaign_id, at)

    def claim(self, lease: Lease, now: datetime, limit: int) -> list[Campaign]:
        return [campaign_from_row(row) for row in CAMPAIGN_QUEUE.claim(self._c, lease, now, limit)]


def campaign_values(c: Campaign) -> dict[str, Any]:
    return {"id": c.id, "month": c.month, "text": c.text, "state": c.state.value, "cursor": c.cursor,
            "selected": c.selected, "skipped": dict(c.skipped), "passes": c.passes, "created_at": c.created_at,
            "finished_at": c.finished_at}


def campaign_from_row(row: sa.Row[Any]) -> Campaign:
    m = row._mapping
    return Campaign(id=m["id"], month=m["month"], text=m["text"], created_at=m["created_at"],
                    state=CampaignState(m["state"]), cursor=m["cursor"], selected=m["selected"],
                    skipped=dict(m["skipped"] or {}), finished_at=m["finished_at"], passes=m["passes"])
