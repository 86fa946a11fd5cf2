"""occupancy: per active ward, its beds by status (read from the beds themselves), then a TOTAL row."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    case,
    func,
    select,
)

from processor.adapters.database.models import (
    Ward,
    WardBed,
)
from processor.core.report_request import ReportRequest
from processor.reports.queries.common import (
    ReportStream,
    in_ward,
    percent,
)

OCCUPANCY_HEADER = [
    "ward",
    "ward_name",
    "total_beds",
    "occupied",
    "available",
    "maintenance",
    "occupancy_pct",
]


def occupancy(connection: Connection, request: ReportRequest, now: datetime) -> ReportStream:
    """Per active ward: total beds, occupied, available, maintenance, occupancy %; then a TOTAL row."""

    def count_of(status: str) -> Any:
        return func.coalesce(func.sum(case((WardBed.status == status, 1), else_=0)), 0)

    query = in_ward(
        select(
            Ward.code,
            Ward.name,
            func.count(WardBed.id),
            count_of("occupied"),
            count_of("available"),
            count_of("maintenance"),
        )
        .outerjoin(WardBed, WardBed.ward_id == Ward.id)
        .where(Ward.is_active.is_(True))
        .group_by(Ward.id, Ward.code, Ward.name)
        .order_by(Ward.code),
        request.ward,
    )
    return ReportStream(OCCUPANCY_HEADER, _occupancy_rows(connection, query))


def _occupancy_rows(connection: Connection, query: Select[*tuple[Any, ...]]) -> Iterator[list[Any]]:
    totals = [0, 0, 0, 0]
    for code, name, *values in connection.execute(query):
        counts = [int(value) for value in values]
        yield [code, name, *counts, percent(counts[1], counts[0])]
        totals = [a + b for a, b in zip(totals, counts, strict=True)]
    yield ["TOTAL", "", *totals, percent(totals[1], totals[0])]
