"""Configuration: TOML file, environment overrides, validation with one clear line per bad key."""

from __future__ import annotations

from pathlib import Path

import pytest

from processor.core.operation_kinds import OperationType
from processor.errors import ConfigError
from processor.settings import Settings, load_settings

REPO_CONFIG = Path(__file__).resolve().parent.parent / "config" / "wardbulk.toml"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No WARDBULK_* variable leaks in from the developer's shell; no config/ in the working dir."""
    import os

    for name in list(os.environ):
        if name.startswith("WARDBULK_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def write_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "custom.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_the_shipped_config_file_is_valid_and_matches_the_documented_defaults() -> None:
    """config/wardbulk.toml validates and repeats the defaults, so the comments tell the truth."""
    assert load_settings(REPO_CONFIG) == Settings()


def test_defaults_apply_when_no_config_file_exists() -> None:
    settings = load_settings()
    assert settings.database_url == "sqlite:///var/wardbulk.sqlite3"
    assert settings.stability_window_s == 2.0
    assert settings.max_file_bytes == 512 * 1024 * 1024
    assert settings.archive_retention_days == 30


def test_config_file_values_override_defaults(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        'inbox_dir = "/srv/drop"\nstability_window_s = 0\n'
        '[operations.bulk_discharge]\nnotify = true\non_row_error = "reject_file"\n',
    )
    settings = load_settings(path)
    assert settings.inbox_dir == Path("/srv/drop")
    assert settings.stability_window_s == 0
    discharge = settings.operations.for_type(OperationType.BULK_DISCHARGE)
    assert discharge.notify is True
    assert discharge.on_row_error == "reject_file"
    assert settings.operations.for_type(OperationType.IMPORT_PATIENTS).notify is False


@pytest.mark.parametrize(
    ("variable", "value", "attribute", "expected"),
    [
        ("WARDBULK_DATABASE_URL", "postgresql://db/ward", "database_url", "postgresql://db/ward"),
        ("WARDBULK_INBOX_DIR", "/mnt/share/in", "inbox_dir", Path("/mnt/share/in")),
        ("WARDBULK_OUTBOX_DIR", "/mnt/share/out", "outbox_dir", Path("/mnt/share/out")),
        ("WARDBULK_STABILITY_WINDOW_S", "7.5", "stability_window_s", 7.5),
    ],
)
def test_the_fixed_environment_variables_override_the_file(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    variable: str,
    value: str,
    attribute: str,
    expected: object,
) -> None:
    path = write_config(
        tmp_path,
        'database_url = "sqlite:///file.db"\ninbox_dir = "a"\noutbox_dir = "b"\nstability_window_s = 1\n',
    )
    monkeypatch.setenv(variable, value)
    assert getattr(load_settings(path), attribute) == expected


def test_nested_keys_are_overridden_with_double_underscores_and_merge_with_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = write_config(tmp_path, '[operations.import_patients]\non_row_error = "reject_file"\n')
    monkeypatch.setenv("WARDBULK_OPERATIONS__IMPORT_PATIENTS__ENCODING", "cp1252")
    imports = load_settings(path).operations.for_type(OperationType.IMPORT_PATIENTS)
    assert imports.encoding == "cp1252"
    assert imports.on_row_error == "reject_file"


def test_wardbulk_config_variable_chooses_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = write_config(tmp_path, "chunk_size = 123\n")
    monkeypatch.setenv("WARDBULK_CONFIG", str(path))
    assert load_settings().chunk_size == 123


def test_an_explicit_path_wins_over_the_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WARDBULK_CONFIG", str(write_config(tmp_path, "chunk_size = 1\n")))
    explicit = tmp_path / "explicit.toml"
    explicit.write_text("chunk_size = 2\n")
    assert load_settings(explicit).chunk_size == 2


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (
            "stability_window_s = -1\n",
            "stability_window_s: Input should be greater than or equal to 0 (env WARDBULK_STABILITY_WINDOW_S)",
        ),
        ("stabilty_window_s = 1\n", "stabilty_window_s: unknown key"),
        ('observer = "magic"\n', "observer: Input should be 'native' or 'polling'"),
        ('database_url = "mysql://x/y"\n', "database_url: Value error, only sqlite and postgresql"),
        (
            '[operations.import_patients]\nencoding = "klingon"\n',
            "operations.import_patients.encoding: Value error, unknown text encoding",
        ),
        (
            "[operations.import_patients]\nmax_error_rate = 2\n",
            "(env WARDBULK_OPERATIONS__IMPORT_PATIENTS__MAX_ERROR_RATE)",
        ),
    ],
)
def test_a_bad_value_is_one_line_naming_the_key(tmp_path: Path, body: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config(tmp_path, body))
    message = str(caught.value)
    assert fragment in message
    assert "\n" not in message


def test_a_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARDBULK_MAX_FILE_BYTES", "lots")
    with pytest.raises(ConfigError, match=r"max_file_bytes: .* \(env WARDBULK_MAX_FILE_BYTES\)"):
        load_settings()


def test_a_rejected_value_is_never_echoed(tmp_path: Path) -> None:
    """The rejected text may be a password pasted in the wrong key."""
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config(tmp_path, 'database_url = "hunter2-secret"\n'))
    assert "hunter2" not in str(caught.value)


def test_a_missing_or_broken_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_settings(write_config(tmp_path, "chunk_size = = 3\n"))


def test_the_effective_configuration_masks_the_database_password() -> None:
    settings = Settings(database_url="postgresql+psycopg://ward:s3cr3t@db.local/ward")
    effective = settings.effective()
    assert effective["database_url"] == "postgresql+psycopg://ward:***@db.local/ward"
    assert "s3cr3t" not in str(effective)


def test_a_bad_environment_value_beside_a_good_file_blames_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is fine: the message says the value came from the environment, not from the file."""
    monkeypatch.setenv("WARDBULK_STABILITY_WINDOW_S", "soon")
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config(tmp_path, "chunk_size = 2\n"))
    message = str(caught.value)
    assert message.startswith("invalid environment: stability_window_s: ")
    assert "(env WARDBULK_STABILITY_WINDOW_S)" in message and "config file" not in message


def test_unknown_wardbulk_variables_are_named_with_the_setting_they_resemble() -> None:
    from processor.settings import unknown_environment_variables

    environ = {
        "WARDBULK_STABILTY_WINDOW_S": "3",  # a typo
        "WARDBULK_OPERATIONS__IMPORT_PATIENTS__NOTIFY": "true",  # known
        "WARDBULK_OPERATIONS__IMPORT_PATIENT__NOTIFY": "true",  # a typo in the operation
        "WARDBULK_CONFIG": "x.toml",
        "WARDBULK_TEST_POSTGRES_URL": "postgresql://x",  # the test suite's own
        "WARDBULK_COLOUR": "blue",
        "PATH": "/bin",
    }
    assert unknown_environment_variables(environ) == [
        ("WARDBULK_COLOUR", None),
        ("WARDBULK_OPERATIONS__IMPORT_PATIENT__NOTIFY", "WARDBULK_OPERATIONS__IMPORT_PATIENTS__NOTIFY"),
        ("WARDBULK_STABILTY_WINDOW_S", "WARDBULK_STABILITY_WINDOW_S"),
    ]
