"""A loopback Airtable: one base's tables, listed a page at a time with `offset`, upserted with `performUpsert`
(10 records a request at most), its schema from the metadata API, and Airtable's error bodies."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.integration.loopback import Canned, LoopbackServer, Recorded
from weft.adapters.airtable.fields import NUMBER_FIELDS, PAYMENT_FIELDS

TOKEN = "patLoopback0000001.0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
BASE_ID = "appLoopback000001"
NUMBERS, PAYMENTS = "Phone Numbers", "Payments"
PAGE_SIZE = 100


class LoopbackAirtable(LoopbackServer):
    """`tables` holds each table's rows (record id -> fields); `schema` each table's field name -> type."""

    def __init__(self) -> None:
        super().__init__()
        self.schema: dict[str, dict[str, str]] = {
            NUMBERS: {name: types[0] for name, types in NUMBER_FIELDS.items()},
            PAYMENTS: {name: types[0] for name, types in PAYMENT_FIELDS.items()},
        }
        self.tables: dict[str, dict[str, dict[str, Any]]] = {NUMBERS: {}, PAYMENTS: {}}
        self._ids = itertools.count(1)
        self.delay = 0.0
        """Seconds every answer takes (a slow or hanging Airtable)."""

    def add(self, table: str, fields: dict[str, Any], created: str = "2025-06-01T09:00:00.000Z") -> str:
        """A row an organiser typed in (Airtable leaves empty fields out)."""
        record_id = f"rec{next(self._ids):014d}"
        self.tables[table][record_id] = {"createdTime": created,
                                         "fields": {k: v for k, v in fields.items() if v not in ("", None)}}
        return record_id

    def rows(self, table: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(row["fields"]) for row in self.tables[table].values()]

    def writes(self) -> list[Recorded]:
        with self._lock:
            return [r for r, status in zip(self.requests, self.statuses, strict=False) if r.method == "PATCH"]

    def default_response(self, request: Recorded) -> Canned:
        time.sleep(self.delay)
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return Canned(401, {"error": {"type": "AUTHENTICATION_REQUIRED",
                                          "message": "Authentication required"}})
        path, query = urlsplit(request.path).path, parse_qs(urlsplit(request.path).query)
        if request.method == "GET" and path == f"/v0/meta/bases/{BASE_ID}/tables":
            return Canned(200, {"tables": self._schema_tables()})
        prefix = f"/v0/{BASE_ID}/"
        table = unquote(path[len(prefix):]) if path.startswith(prefix) else None
        if table not in self.tables:
            return Canned(404, {"error": "NOT_FOUND"})
        with self._lock:
            if request.method == "GET":
                return self._list(table, query)
            if request.method == "PATCH":
                return self._upsert(table, request.json())
        return super().default_response(request)

    def _schema_tables(self) -> list[dict[str, Any]]:
        return [{"id": f"tbl{i:014d}", "name": name, "primaryFieldId": "fld0",
                 "fields": [{"id": f"fld{j}", "name": field, "type": kind} for j, (field, kind) in
                            enumerate(fields.items())]}
                for i, (name, fields) in enumerate(self.schema.items())]

    def _list(self, table: str, query: dict[str, list[str]]) -> Canned:
        rows = list(self.tables[table].items())
        start = int(query.get("offset", ["0"])[0].removeprefix("itr"))
        size = min(int(query.get("pageSize", [str(PAGE_SIZE)])[0]), PAGE_SIZE)
        page = [{"id": key, **row} for key, row in rows[start:start + size]]
        body: dict[str, Any] = {"records": page}
        if start + size < len(rows):
            body["offset"] = f"itr{start + size}"
        return Canned(200, body)

    def _upsert(self, table: str, body: dict[str, Any]) -> Canned:
        records, merge = body.get("records", []), body.get("performUpsert", {}).get("fieldsToMergeOn", [])
        if len(records) > 10:
            return Canned(422, {"error": {"type": "INVALID_RECORDS", "message": "at most 10 records"}})
        for record in records:
            unknown = set(record["fields"]) - set(self.schema[table])
            if unknown:
                return Canned(422, {"error": {"type": "UNKNOWN_FIELD_NAME",
                                              "message": f'Unknown field name: "{sorted(unknown)[0]}"'}})
        created, updated, out = [], [], []
        for record in records:
            fields = {k: v for k, v in record["fields"].items() if v not in ("", None)}
            key = tuple(fields.get(name) for name in merge)
            match = next((rid for rid, row in self.tables[table].items()
                          if tuple(row["fields"].get(name) for name in merge) == key), None)
            if match is None:
                match = f"rec{next(self._ids):014d}"
                self.tables[table][match] = {"createdTime": "2026-11-01T12:00:00.000Z", "fields": {}}
                created.append(match)
            else:
                updated.append(match)
            row = self.tables[table][match]
            row["fields"] = {**row["fields"], **fields}
            for name in [k for k, v in record["fields"].items() if v in ("", None)]:
                row["fields"].pop(name, None)
            out.append({"id": match, **row})
        return Canned(200, {"records": out, "createdRecords": created, "updatedRecords": updated})


def upserted(request: Recorded) -> list[dict[str, Any]]:
    return [r["fields"] for r in json.loads(request.body)["records"]]
