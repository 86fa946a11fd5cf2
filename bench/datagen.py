"""Realistic synthetic ward data from a fixed seed, streamed to disk.

Contract: the same arguments give the same bytes (every random choice comes from ``random.Random``
seeded by the arguments; no clock is read). Patients are numbered: patient ``n`` always has the same
unique MRN and unique e-mail, whatever file they appear in, so files built from disjoint number ranges
hold distinct patients. Rows are written one at a time: memory does not grow with the row count.
"""

from __future__ import annotations

import csv
import random
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

IMPORT_PATIENTS_HEADER = (
    "first_name",
    "last_name",
    "email",
    "patient_id",
    "phone",
    "date_of_birth",
    "gender",
    "caregiver_name",
    "caregiver_email",
    "caregiver_phone",
)
SYNC_BEDS_HEADER = ("ward", "bed_id", "bed_number", "ward_name", "status")
ASSIGNMENT_HEADER = ("patient_id", "bed_id", "reason", "chief_complaint", "admission_date", "notify")
DISCHARGE_HEADER = ("patient_id", "discharge_notes", "discharge_status", "discharge_date", "notify")
TRANSFER_HEADER = ("patient_id", "to_bed_id", "reason", "transfer_date", "notify")
TRANSFER_REASONS = ("Step-down care", "Isolation", "Closer to the nursing station", "Ward closure")

FIRST_NAMES = (
    "Jane", "John", "Ana", "Bob", "Maria", "David", "Sarah", "Michael", "Emma", "Liam", "Olivia", "Noah",
    "Sophie", "Lucas", "Mia", "Elijah", "Chloé", "José", "Zoë", "Łukasz", "Søren", "François", "Björn",
    "Małgorzata", "Agnieszka", "Jürgen", "Renée", "Siobhán", "Nuño", "İlkay", "Aoife", "Priya", "Wei",
    "Mohammed", "Fatima", "Yuki", "Kwame", "Amara", "Mateo", "Isabella", "Hannah", "Oskar", "Ingrid",
    "Pedro", "Léa", "Thomas", "Grace", "Arjun", "Nadia", "Tomás", "Zsófia", "Dmitri", "Ewa", "Hélène",
    "Mary-Kate", "Jean-Luc", "Ruth", "Samuel", "Chiara", "Kofi",
)  # fmt: skip
LAST_NAMES = (
    "Doe", "Smith", "Lee", "García", "Müller", "Nowak", "Kowalski", "O'Brien", "Nguyễn", "Johnson",
    "Brown", "Martínez", "Rossi", "Dubois", "Jensen", "Øvergaard", "Šimić", "Wiśniewska", "Papadopoulos",
    "van der Berg", "de la Cruz", "MacDonald", "Kim", "Patel", "Chen", "Okafor", "Haddad", "Yılmaz",  # noqa: RUF001
    "Fernández", "Schröder", "Lefèvre", "Andersson", "Novák", "Horváth", "Murphy", "Walsh", "Khan",
    "Singh", "Tanaka", "Sato", "Silva", "Costa", "Pereira", "Hughes", "Wright", "Ivanova", "Kuznetsov",
    "Smith-Jones", "Álvarez", "Østergaard", "Łęcka", "Mendes", "Baker", "Clarke", "Ng", "Abara",
    "Weiß", "Gómez", "Zhou", "Evans",
)  # fmt: skip
DOMAINS = ("example.org", "mail.example.com", "hospital-mail.example.net", "example.co.uk", "post.example.de")
WARD_KINDS = ("Medical", "Surgical", "Cardiology", "Paediatrics", "Geriatrics")
REASONS = ("Emergency", "Routine", "Elective surgery", "Observation", "Transfer", "Maternity", "Oncology")
COMPLAINTS = (
    "",
    "Chest pain",
    "Shortness of breath, fever",
    "Hip replacement",
    "Abdominal pain",
    'Fall at home, "dizzy"',
    "Post-operative care",
)
DISCHARGE_STATUSES = ("recovered", "recovered", "recovered", "transferred", "other", "against_medical_advice")
DISCHARGE_NOTES = ("", "Stable, follow up in 2 weeks", "GP to review medication", "Home with support")
# Letters NFKD does not decompose into a base letter plus accents.
_ASCII_EXTRA = str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "ß": "ss", "đ": "d", "ı": "i"})  # noqa: RUF001
MRN_MODULUS = 10**8
MRN_MULTIPLIER = 61_803_399  # coprime with 10**8 (a bijection below it), golden-ratio spread: no sorted runs
BIRTH_FIRST = date(1925, 1, 1)
BIRTH_DAYS = (date(2024, 12, 31) - BIRTH_FIRST).days


def seeded(label: str) -> random.Random:
    """A generator seeded by ``label``: benchmark data wants repeatability, not secrecy."""
    return random.Random(label)  # noqa: S311


def mrn_of(number: int) -> str:
    """The unique MRN of patient ``number`` (0 <= number < 10**8): nine digits, always a leading zero."""
    return f"0{(number * MRN_MULTIPLIER + 1_009) % MRN_MODULUS:08d}"


def ascii_fold(text: str) -> str:
    """``Łukasz`` -> ``Lukasz``: what a registration desk turns a name into for an e-mail address."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_ASCII_EXTRA))
    return decomposed.encode("ascii", "ignore").decode("ascii")


def _email_part(name: str) -> str:
    return "".join(ch for ch in ascii_fold(name).lower() if ch.isalnum() or ch in "'-")


@dataclass(frozen=True)
class PatientIdentity:
    """What the database knows of a generated patient: names, e-mail (lower-case) and MRN."""

    first_name: str
    last_name: str
    email: str
    mrn: str
    phone: str
    gender: str


def _phone(rng: random.Random) -> str:
    digits = [rng.randrange(10) for _ in range(10)]
    text = "".join(map(str, digits))
    style = rng.randrange(4)
    if style == 0:
        return f"+44 {text[:2]} {text[2:6]} {text[6:]}"
    if style == 1:
        return f"({text[:3]}) {text[3:6]}-{text[6:]}"
    if style == 2:
        return f"{text[:3]}.{text[3:6]}.{text[6:]}"
    return f"0{text[1:4]} {text[4:7]} {text[7:]}"


def patient_identity(rng: random.Random, number: int) -> PatientIdentity:
    """Patient ``number``'s identity; unique e-mail and MRN follow from ``number``, the rest from ``rng``."""
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    local = f"{_email_part(first)}.{_email_part(last)}{number}"
    email = f"{local}@{rng.choice(DOMAINS)}"
    phone = _phone(rng) if rng.random() < 0.9 else ""
    gender = rng.choices(("M", "F", "O", "U", ""), weights=(47, 47, 2, 1, 3))[0]
    return PatientIdentity(first, last, email, mrn_of(number), phone, gender)


def _shown_email(rng: random.Random, email: str) -> str:
    """Upstream systems are lower-case-ish: a few addresses arrive capitalised (stored lower-case)."""
    return email[0].upper() + email[1:] if rng.random() < 0.05 else email


def _caregiver(rng: random.Random, last_name: str) -> tuple[str, str, str]:
    if rng.random() >= 0.3:
        return "", "", ""
    first = rng.choice(FIRST_NAMES)
    email = (
        f"{_email_part(first)}.{_email_part(last_name)}@{rng.choice(DOMAINS)}" if rng.random() < 0.7 else ""
    )
    phone = _phone(rng) if rng.random() < 0.8 else ""
    return f"{first} {last_name}", email, phone


def import_patients_row(rng: random.Random, number: int) -> list[str]:
    """One import_patients row (columns of ``IMPORT_PATIENTS_HEADER``) for patient ``number``."""
    who = patient_identity(rng, number)
    birth = (
        (BIRTH_FIRST + timedelta(days=rng.randrange(BIRTH_DAYS))).isoformat() if rng.random() < 0.97 else ""
    )
    gender = who.gender.lower() if rng.random() < 0.05 else who.gender
    return [
        who.first_name,
        who.last_name,
        _shown_email(rng, who.email),
        who.mrn,
        who.phone,
        birth,
        gender,
        *_caregiver(rng, who.last_name),
    ]


def _write_csv(path: Path, header: tuple[str, ...], rows: Iterator[list[str]]) -> int:
    """Write ``header`` and ``rows`` as UTF-8 CSV (no BOM, CRLF-free); returns the data row count."""
    count = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow(row)
            count += 1
    return count


def write_import_patients(path: Path, rows: int, first: int = 0, seed: int = 1) -> int:
    """Write an import_patients file of patients ``first .. first+rows-1``; returns ``rows``."""
    rng = seeded(f"import_patients:{seed}:{first}:{rows}")
    return _write_csv(
        path, IMPORT_PATIENTS_HEADER, (import_patients_row(rng, n) for n in range(first, first + rows))
    )


def ward_code(ward: int) -> str:
    """Ward ``ward``'s code (``W001``...)."""
    return f"W{ward + 1:03d}"


def bed_code(ward: int, bed: int) -> str:
    """The code of bed ``bed`` of ward ``ward`` (``W001-001``...)."""
    return f"{ward_code(ward)}-{bed + 1:03d}"


def bed_codes(wards: int, beds_per_ward: int) -> Iterator[str]:
    """Every bed code of a hospital of ``wards`` x ``beds_per_ward``, ward by ward."""
    for ward in range(wards):
        for bed in range(beds_per_ward):
            yield bed_code(ward, bed)


def _sync_beds_rows(wards: int, beds_per_ward: int) -> Iterator[list[str]]:
    for ward in range(wards):
        name = f"Ward {ward + 1} ({WARD_KINDS[ward % len(WARD_KINDS)]})"
        for bed in range(beds_per_ward):
            yield [ward_code(ward), bed_code(ward, bed), str(bed + 1), name, ""]


def write_sync_beds(path: Path, wards: int, beds_per_ward: int) -> int:
    """Write a sync_beds file creating ``wards`` wards of ``beds_per_ward`` available beds."""
    return _write_csv(path, SYNC_BEDS_HEADER, _sync_beds_rows(wards, beds_per_ward))


def _past_datetime(rng: random.Random) -> str:
    """Empty (the default, now) half of the time, else a time in 2025 (always in the past)."""
    if rng.random() < 0.5:
        return ""
    moment = date(2025, 1, 1) + timedelta(days=rng.randrange(365))
    return f"{moment.isoformat()}T{rng.randrange(24):02d}:{rng.randrange(60):02d}"


def write_assignments(path: Path, patients: int, wards: int, beds_per_ward: int, seed: int = 1) -> int:
    """Write a bulk_assignment file putting patients ``0 .. patients-1`` each in a distinct bed (shuffled)."""
    rng = seeded(f"bulk_assignment:{seed}:{patients}")
    beds = list(bed_codes(wards, beds_per_ward))[:patients]
    if len(beds) < patients:
        raise ValueError(f"{patients} patients need as many beds, the hospital has {len(beds)}")
    rng.shuffle(beds)

    def rows() -> Iterator[list[str]]:
        for number, bed in enumerate(beds):
            yield [mrn_of(number), bed, rng.choice(REASONS), rng.choice(COMPLAINTS), _past_datetime(rng), ""]

    return _write_csv(path, ASSIGNMENT_HEADER, rows())


def write_transfers(path: Path, patients: int, wards: int, beds_per_ward: int, seed: int = 1) -> int:
    """Write a transfer_patients file moving patients ``0 .. patients-1`` (admitted by
    ``write_assignments`` to the hospital's first ``patients`` beds) each to a distinct bed of the next
    ``patients`` beds, in a shuffled order, at now."""
    rng = seeded(f"transfer_patients:{seed}:{patients}")
    beds = list(bed_codes(wards, beds_per_ward))[patients : 2 * patients]
    if len(beds) < patients:
        raise ValueError(f"{patients} transfers need {2 * patients} beds, the hospital is smaller")
    order = list(range(patients))
    rng.shuffle(order)

    def rows() -> Iterator[list[str]]:
        for number in order:
            yield [mrn_of(number), beds[number], rng.choice(TRANSFER_REASONS), "", ""]

    return _write_csv(path, TRANSFER_HEADER, rows())


def write_discharges(path: Path, patients: int, seed: int = 1) -> int:
    """Write a bulk_discharge file discharging patients ``0 .. patients-1`` in a shuffled order, at now."""
    rng = seeded(f"bulk_discharge:{seed}:{patients}")
    order = list(range(patients))
    rng.shuffle(order)

    def rows() -> Iterator[list[str]]:
        for number in order:
            yield [mrn_of(number), rng.choice(DISCHARGE_NOTES), rng.choice(DISCHARGE_STATUSES), "", ""]

    return _write_csv(path, DISCHARGE_HEADER, rows())
