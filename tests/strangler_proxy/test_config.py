"""The proxy's settings that guard it: admin tokens, identity keys and lifetime, the deny-list."""

from __future__ import annotations

import stat

import pytest

from strangler_proxy.config import (
    ConfigError,
    ProxyConfig,
    admin_tokens_load,
    identity_secret_load,
)


def test_an_unset_admin_token_is_made_once_per_var_dir_with_mode_0600(tmp_path):
    env = {"STRANGLER_VAR_DIR": str(tmp_path)}
    config = ProxyConfig.from_env(env)
    assert config.admin_token is None  # reading the environment creates nothing

    first, holders = admin_tokens_load(config, env)
    again, _ = admin_tokens_load(config, env)

    assert first == again == (tmp_path / "admin-token").read_text().strip()
    assert stat.S_IMODE((tmp_path / "admin-token").stat().st_mode) == 0o600
    assert holders == ()


def test_the_variable_wins_and_a_short_admin_token_is_refused(tmp_path):
    env = {"STRANGLER_VAR_DIR": str(tmp_path), "STRANGLER_ADMIN_TOKEN": "x" * 20}
    assert admin_tokens_load(ProxyConfig.from_env(env), env)[0] == "x" * 20
    assert not (tmp_path / "admin-token").exists()
    with pytest.raises(ConfigError, match="at least 16"):
        ProxyConfig.from_env({"STRANGLER_ADMIN_TOKEN": "s3cret"})


def test_named_admin_tokens_are_files_of_the_admin_tokens_folder(tmp_path):
    folder = tmp_path / "admin-tokens"
    folder.mkdir()
    (folder / "alice").write_text("alice-token-0123456789\n")
    (folder / "alice").chmod(0o600)
    env = {"STRANGLER_VAR_DIR": str(tmp_path)}

    _, holders = admin_tokens_load(ProxyConfig.from_env(env), env)

    assert holders == (("alice", "alice-token-0123456789"),)
    (folder / "alice").chmod(0o644)
    with pytest.raises(ConfigError, match="open to other users"):
        admin_tokens_load(ProxyConfig.from_env(env), env)


def test_the_identity_secret_is_the_var_dirs_unless_set(tmp_path):
    env = {"STRANGLER_VAR_DIR": str(tmp_path)}
    made = identity_secret_load(ProxyConfig.from_env(env), env)
    assert made == (tmp_path / "identity-secret").read_text().strip()
    env["STRANGLER_IDENTITY_SECRET"] = "k2:" + "n" * 32 + ",k1:" + "o" * 32
    config = ProxyConfig.from_env(env)
    assert identity_secret_load(config, env) == env["STRANGLER_IDENTITY_SECRET"]
    assert config.identity_keys().signing_kid == "k2"


@pytest.mark.parametrize(
    ("env", "why"),
    [
        ({"STRANGLER_IDENTITY_TTL": "60"}, "1 to 30"),
        ({"STRANGLER_IDENTITY_SECRET": "short"}, "at least 32"),
        ({"STRANGLER_REDACT_FIELDS": "none"}, "cannot remove"),
        ({"STRANGLER_RECORD_REDACT_FIELDS": "password"}, "STRANGLER_REDACT_FIELDS"),
        ({"STRANGLER_AUTH_LOGIN": "login"}, "STRANGLER_AUTH_LOGIN"),
    ],
)
def test_settings_that_would_weaken_the_proxy_are_refused_naming_them(env, why):
    with pytest.raises(ConfigError, match=why):
        ProxyConfig.from_env(env)


def test_the_edge_rules_have_defaults_and_can_be_moved_or_turned_off():
    config = ProxyConfig.from_env({})
    assert config.login == ("POST", "/api/auth/token/")
    assert config.password_change == ("PATCH", "/api/users/me/")
    assert config.identity_ttl == 30
    moved = ProxyConfig.from_env({"STRANGLER_AUTH_LOGIN": "post /login",
                                  "STRANGLER_AUTH_PASSWORD_CHANGE": "off"})  # fmt: skip
    assert moved.login == ("POST", "/login") and moved.password_change is None
