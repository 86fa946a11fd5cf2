"""The redaction's shortcut (no marker, no regular expression) never changes what is redacted."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from processor.logs import _PATTERNS, scrub


def every_pattern(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


SAMPLES = [
    "DETAIL:  Key (email)=(jane@x.org) already exists.",
    "Key (mrn)=(000123) is not present in table",
    "new row violates check constraint; Failing row contains (1, Jane, Doe).",
    "[SQL: INSERT INTO patients ...]\n[parameters: ('Jane', 'Doe')]\n(Background on this error ...)",
    "1 validation error\n  input_value='jane@x.org', input_type=str",
    "could not connect to postgresql://ward:secret@db.example.org/wardbulk",
    "jane.doe+ward@hospital.example.org",
    "file_claimed",
    "drop-00042.csv",
    "import_patients",
]

MARKER_TEXT = st.text(alphabet=st.sampled_from(list("aK(e)=@:/ DETAILFingrowcts[]_v.xp'")), max_size=60)


def test_the_samples_are_redacted_as_every_pattern_would() -> None:
    for sample in SAMPLES:
        assert scrub(sample) == every_pattern(sample)


@given(text=st.one_of(st.text(max_size=80), MARKER_TEXT))
def test_any_text_is_redacted_as_every_pattern_would(text: str) -> None:
    assert scrub(text) == every_pattern(text)
