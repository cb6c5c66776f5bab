import pytest

from service_kit.env import (
    ConfigError,
    database_config,
    env_bool,
    env_int,
    env_str,
    relay_poll_seconds,
)


def test_env_str_without_default_names_the_missing_variable(monkeypatch):
    monkeypatch.delenv("STRANGLER_NOPE", raising=False)
    with pytest.raises(ConfigError, match="'STRANGLER_NOPE' is missing"):
        env_str("STRANGLER_NOPE")


def test_env_bool_rejects_a_word_it_does_not_know(monkeypatch):
    monkeypatch.setenv("STRANGLER_FLAG", "maybe")
    with pytest.raises(ConfigError, match=r"'STRANGLER_FLAG' must be a boolean.*'maybe'"):
        env_bool("STRANGLER_FLAG")


def test_env_int_names_the_value_it_could_not_read(monkeypatch):
    monkeypatch.setenv("STRANGLER_N", "ten")
    with pytest.raises(ConfigError, match="'STRANGLER_N' must be an integer, got 'ten'"):
        env_int("STRANGLER_N", 1)


def test_database_defaults_to_a_sqlite_file_per_service(monkeypatch, tmp_path):
    monkeypatch.delenv("PAYMENTS_DATABASE_URL", raising=False)
    monkeypatch.setenv("STRANGLER_VAR_DIR", str(tmp_path))
    config = database_config("payments", env_name="PAYMENTS_DATABASE_URL")
    assert config["ENGINE"] == "django.db.backends.sqlite3"
    assert config["NAME"] == str(tmp_path / "payments.sqlite3")


def test_database_url_that_is_not_a_url_is_refused_by_name(monkeypatch):
    monkeypatch.setenv("X_DATABASE_URL", "nonsense://")
    with pytest.raises(ConfigError, match="'X_DATABASE_URL' is not a database URL"):
        database_config("x", env_name="X_DATABASE_URL")


SQLITE = {"ENGINE": "django.db.backends.sqlite3"}
POSTGRES = {"ENGINE": "django.db.backends.postgresql"}


def test_relay_polls_often_on_sqlite_which_has_no_notify(monkeypatch):
    monkeypatch.delenv("OUTBOX_RELAY_POLL_S", raising=False)
    assert relay_poll_seconds(SQLITE) == 0.2
    assert relay_poll_seconds(POSTGRES) == 1.0


def test_relay_poll_interval_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("OUTBOX_RELAY_POLL_S", "0.05")
    assert relay_poll_seconds(POSTGRES) == 0.05


@pytest.mark.parametrize("raw", ["0", "-1", "nan", "inf", "soon"])
def test_relay_poll_interval_must_be_a_number_above_zero(monkeypatch, raw):
    monkeypatch.setenv("OUTBOX_RELAY_POLL_S", raw)
    with pytest.raises(ConfigError, match=f"'OUTBOX_RELAY_POLL_S' must be a.*number.*'{raw}'"):
        relay_poll_seconds(SQLITE)
