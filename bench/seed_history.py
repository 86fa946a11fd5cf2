"""``python -m bench.seed_history``: fill a migrated, empty ward database with a hospital's history.

Written with SQLAlchemy Core and the project's own tables (so times are stored exactly as wardbulk
stores them), through the project's engine (SQLite foreign keys on), in batches. The history, from a
fixed seed: ``patients`` patients (users with e-mails), ``wards`` x ``beds_per_ward`` beds, 2% of them
in maintenance; about 85% of the others occupied by a current (active) admission, each of a distinct
patient; and ``admissions`` admissions in all, spread over the beds, each bed's stays one after another
over the last two years, every stay but a bed's current one ended by a discharge. The database's
rules hold: at most one active admission per patient and per bed, a bed occupied exactly when it has
a current patient.

Prints one JSON object: the counts, and the row count each report must have for the given period.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, Table, func, insert, select, text

from bench import datagen
from processor.adapters.database.engine import build_engine
from processor.adapters.database.models import (
    Patient,
    PatientAdmission,
    PatientDischarge,
    User,
    Ward,
    WardBed,
)

BATCH = 20_000
HISTORY_DAYS = 730
MAINTENANCE_SHARE = 0.02
OCCUPIED_SHARE = 0.85


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


def _insert(connection: Connection, model: Any, rows: Iterator[dict[str, Any]]) -> None:
    """Insert ``rows`` in batches of ``BATCH``."""
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            connection.execute(insert(_table(model)), batch)
            batch = []
    if batch:
        connection.execute(insert(_table(model)), batch)


def _people(
    rng: random.Random, patients: int, now: datetime
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    created = now - timedelta(days=HISTORY_DAYS + 30)
    for number in range(patients):
        who = datagen.patient_identity(rng, number)
        user = {
            "id": number + 1,
            "username": f"patient:{who.mrn}",
            "email": who.email,
            "first_name": who.first_name,
            "last_name": who.last_name,
            "is_active": True,
            "created_at": created,
        }
        patient = {
            "id": number + 1,
            "user_id": number + 1,
            "mrn": who.mrn,
            "phone": who.phone or None,
            "date_of_birth": date(1925, 1, 1) + timedelta(days=rng.randrange(36_000)),
            "gender": who.gender or None,
            "created_at": created,
        }
        yield user, patient


def insert_patients(connection: Connection, rng: random.Random, patients: int, now: datetime) -> None:
    """Users and patients with ids 1..patients, a batch of users then its patients."""
    users: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for user, patient in _people(rng, patients, now):
        users.append(user)
        rows.append(patient)
        if len(users) == BATCH:
            _flush_people(connection, users, rows)
    _flush_people(connection, users, rows)


def _flush_people(
    connection: Connection, users: list[dict[str, Any]], patients: list[dict[str, Any]]
) -> None:
    if users:
        connection.execute(insert(_table(User)), users)
        connection.execute(insert(_table(Patient)), patients)
    users.clear()
    patients.clear()


@dataclass(frozen=True)
class BedPlan:
    """A bed's id, ward, status and current patient (a patient id, or None)."""

    id: int
    ward_id: int
    code: str
    status: str
    patient_id: int | None


def _bed_status(rng: random.Random) -> str:
    if rng.random() < MAINTENANCE_SHARE:
        return "maintenance"
    return "occupied" if rng.random() < OCCUPIED_SHARE else "available"


def plan_beds(rng: random.Random, wards: int, per_ward: int, patients: int) -> list[BedPlan]:
    """Every bed's status; occupied beds get distinct random patients."""
    statuses = [_bed_status(rng) for _ in range(wards * per_ward)]
    occupied = min(statuses.count("occupied"), patients)
    current = iter(rng.sample(range(1, patients + 1), occupied))
    plans = []
    for index, status in enumerate(statuses):
        ward, bed = divmod(index, per_ward)
        patient = next(current, None) if status == "occupied" else None
        final = "available" if status == "occupied" and patient is None else status
        plans.append(BedPlan(index + 1, ward + 1, datagen.bed_code(ward, bed), final, patient))
    return plans


def _ward_row(ward: int, now: datetime) -> dict[str, Any]:
    return {
        "id": ward + 1,
        "code": datagen.ward_code(ward),
        "name": f"Ward {ward + 1}",
        "is_active": True,
        "created_at": now,
    }


def _bed_row(plan: BedPlan, now: datetime) -> dict[str, Any]:
    return {
        "id": plan.id,
        "code": plan.code,
        "ward_id": plan.ward_id,
        "bed_number": plan.code[-3:],
        "status": plan.status,
        "current_patient_id": plan.patient_id,
        "updated_at": now,
    }


def insert_hospital(connection: Connection, wards: int, plans: list[BedPlan], now: datetime) -> None:
    """Wards and beds as planned."""
    _insert(connection, Ward, (_ward_row(ward, now) for ward in range(wards)))
    _insert(connection, WardBed, (_bed_row(plan, now) for plan in plans))


@dataclass(frozen=True)
class Stay:
    """One admission and its discharge time (None: still in the bed)."""

    bed_id: int
    patient_id: int
    admitted_at: datetime
    discharged_at: datetime | None


def _bed_stays(rng: random.Random, plan: BedPlan, count: int, patients: int, now: datetime) -> Iterator[Stay]:
    """``count`` stays of one bed, one after another; the last is the current one of an occupied bed."""
    start = now - timedelta(days=HISTORY_DAYS)
    span = (now - start).total_seconds()
    moments = sorted(start + timedelta(seconds=rng.random() * span) for _ in range(count))
    for index, admitted in enumerate(moments):
        last = index == count - 1
        if last and plan.patient_id is not None:
            yield Stay(plan.id, plan.patient_id, admitted, None)
            return
        following = now if last else moments[index + 1]
        discharged = admitted + (following - admitted) * rng.uniform(0.5, 0.95)
        yield Stay(plan.id, rng.randrange(1, patients + 1), admitted, discharged)


def plan_stays(
    rng: random.Random, plans: list[BedPlan], admissions: int, patients: int, now: datetime
) -> Iterator[Stay]:
    """``admissions`` stays spread evenly over the beds not in maintenance (at least one per occupied bed)."""
    usable = [plan for plan in plans if plan.status != "maintenance"]
    each, extra = divmod(admissions, len(usable))
    for index, plan in enumerate(usable):
        count = max(each + (index < extra), 1 if plan.patient_id is not None else 0)
        if count:
            yield from _bed_stays(rng, plan, count, patients, now)


@dataclass
class Tally:
    """What was inserted, and how many discharges fall in the report period."""

    admissions: int = 0
    active: int = 0
    discharges: int = 0
    discharges_in_period: int = 0


def _admission_row(admission_id: int, stay: Stay) -> dict[str, Any]:
    return {
        "id": admission_id,
        "patient_id": stay.patient_id,
        "bed_id": stay.bed_id,
        "admitted_at": stay.admitted_at,
        "reason": datagen.REASONS[admission_id % len(datagen.REASONS)],
        "chief_complaint": None,
        "is_active": stay.discharged_at is None,
        "created_at": stay.admitted_at,
    }


def _discharge_row(admission_id: int, stay: Stay) -> dict[str, Any]:
    status = datagen.DISCHARGE_STATUSES[admission_id % len(datagen.DISCHARGE_STATUSES)]
    return {
        "admission_id": admission_id,
        "patient_id": stay.patient_id,
        "discharged_at": stay.discharged_at,
        "discharge_status": status,
        "discharge_notes": None,
        "created_at": stay.discharged_at,
    }


def insert_stays(connection: Connection, stays: Iterator[Stay], period: tuple[datetime, datetime]) -> Tally:
    """Admissions (ids 1..n) and a discharge for every ended stay, in batches."""
    tally = Tally()
    admissions: list[dict[str, Any]] = []
    discharges: list[dict[str, Any]] = []
    for stay in stays:
        tally.admissions += 1
        admissions.append(_admission_row(tally.admissions, stay))
        if stay.discharged_at is None:
            tally.active += 1
        else:
            tally.discharges += 1
            tally.discharges_in_period += period[0] <= stay.discharged_at < period[1]
            discharges.append(_discharge_row(tally.admissions, stay))
        if len(admissions) >= BATCH:
            _flush(connection, admissions, discharges)
    _flush(connection, admissions, discharges)
    return tally


def _flush(
    connection: Connection, admissions: list[dict[str, Any]], discharges: list[dict[str, Any]]
) -> None:
    if admissions:
        connection.execute(insert(_table(PatientAdmission)), admissions)
    if discharges:
        connection.execute(insert(_table(PatientDischarge)), discharges)
    admissions.clear()
    discharges.clear()


def _ensure_empty(connection: Connection) -> None:
    for model in (User, Patient, Ward, WardBed, PatientAdmission):
        if connection.execute(select(func.count()).select_from(_table(model))).scalar_one():
            raise SystemExit(f"{model.__tablename__} is not empty: seed a fresh database")


def _advance_sequences(connection: Connection) -> None:
    """PostgreSQL: the rows were given explicit ids, so move each id sequence past them; without this
    the next ordinary insert (a wardbulk operation on the seeded database) would collide."""
    if connection.dialect.name != "postgresql":
        return
    for model in (User, Patient, Ward, WardBed, PatientAdmission, PatientDischarge):
        name = model.__tablename__
        connection.execute(
            text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), coalesce(max(id), 1)) FROM {name}")  # noqa: S608
        )


def seed(args: argparse.Namespace) -> dict[str, Any]:
    """Seed the database of ``args.database_url``; returns the counts and expected report rows."""
    rng, now = datagen.seeded(f"history:{args.seed}"), datetime.now(UTC)
    period = (
        datetime.combine(args.period_start, time.min, UTC),
        datetime.combine(args.period_end + timedelta(days=1), time.min, UTC),
    )
    engine = build_engine(args.database_url)
    with engine.begin() as connection:
        _ensure_empty(connection)
        insert_patients(connection, rng, args.patients, now)
        plans = plan_beds(rng, args.wards, args.beds_per_ward, args.patients)
        insert_hospital(connection, args.wards, plans, now)
        tally = insert_stays(connection, plan_stays(rng, plans, args.admissions, args.patients, now), period)
        _advance_sequences(connection)
    engine.dispose()
    return {
        "patients": args.patients,
        "wards": args.wards,
        "beds": len(plans),
        "admissions": tally.admissions,
        "active_admissions": tally.active,
        "discharges": tally.discharges,
        "expected_rows": {
            "occupancy": args.wards + 1,
            "patient_list": tally.active,
            "admission_discharge": tally.discharges_in_period,
            "bed_utilization": len(plans),
            "export_patients": args.patients,
        },
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: ``--database-url URL --patients N --admissions N --wards N --beds-per-ward N``."""
    parser = argparse.ArgumentParser(prog="python -m bench.seed_history")
    parser.add_argument("--database-url", required=True)
    for name in ("patients", "admissions", "wards", "beds-per-ward", "seed"):
        parser.add_argument(f"--{name}", type=int, required=name != "seed", default=1)
    parser.add_argument("--period-start", type=date.fromisoformat, required=True)
    parser.add_argument("--period-end", type=date.fromisoformat, required=True)
    return parser.parse_args(argv)


if __name__ == "__main__":
    print(json.dumps(seed(parse_args())))
