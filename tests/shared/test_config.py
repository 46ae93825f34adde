"""Settings: secrets have no defaults, and a start without them names everything missing."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from shared.core.catalog import load_catalog
from shared.core.config import Settings
from shared.core.errors import ConfigurationError, InvalidInput


def test_missing_secrets_are_all_named_at_once() -> None:
    settings = Settings(environment="production")
    with pytest.raises(ConfigurationError) as caught:
        settings.require("replicate_api_token", "replicate_webhook_secret", "public_webhook_url")
    message = caught.value.detail
    for name in ("REPLICATE_API_TOKEN", "REPLICATE_WEBHOOK_SECRET", "PUBLIC_WEBHOOK_URL"):
        assert name in message


def test_an_api_start_names_every_missing_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_JWT_SECRET",
                 "SUPABASE_JWKS_URL", "REPLICATE_API_TOKEN", "REPLICATE_WEBHOOK_SECRET",
                 "PUBLIC_WEBHOOK_URL", "RPC_TRANSPORT", "STORAGE_BACKEND",
                 "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "CHECKOUT_SUCCESS_URL",
                 "CHECKOUT_CANCEL_URL"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigurationError) as caught:
        Settings(environment="production").require_api()
    assert caught.value.detail == (
        "settings are incomplete (missing: REPLICATE_API_TOKEN, REPLICATE_WEBHOOK_SECRET, "
        "PUBLIC_WEBHOOK_URL, STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET, CHECKOUT_SUCCESS_URL, "
        "CHECKOUT_CANCEL_URL, SUPABASE_JWT_SECRET, SUPABASE_URL, SUPABASE_SERVICE_ROLE_KEY)"
    )


def test_placeholder_secret_is_refused_outside_development() -> None:
    prod = Settings(environment="production", replicate_api_token=SecretStr("changeme"))
    with pytest.raises(ConfigurationError, match="placeholder values: REPLICATE_API_TOKEN"):
        prod.require("replicate_api_token")
    Settings(environment="development", replicate_api_token=SecretStr("changeme")).require(
        "replicate_api_token"
    )


def test_supabase_transport_needs_url_and_key() -> None:
    with pytest.raises(ConfigurationError, match="SUPABASE_URL, SUPABASE_SERVICE_ROLE_KEY"):
        Settings(rpc_transport="supabase").require_database()


def test_cors_origins_come_from_a_comma_separated_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example, https://b.example")
    assert Settings().cors_origins == ["https://a.example", "https://b.example"]


def test_catalog_overrides_replace_and_add_offerings() -> None:
    catalog = load_catalog(
        '[{"model": "t2v-14B", "kind": "t2v", "resolution": "480p", "cost": 12,'
        ' "replicate_model": "owner/other-model"}]'
    )
    assert catalog.lookup("t2v", "t2v-14B", "480p").cost == 12
    assert catalog.lookup("t2v", "t2v-14B", "720p").cost == 20
    with pytest.raises(ConfigurationError, match="CATALOG_OVERRIDES"):
        load_catalog('[{"model": "x"}]')


def test_catalog_says_what_is_available_instead() -> None:
    catalog = load_catalog(None)
    with pytest.raises(InvalidInput, match="choose 480p"):
        catalog.lookup("t2v", "t2v-1.3B", "720p")
    with pytest.raises(InvalidInput, match="available: i2v-14B"):
        catalog.lookup("i2v", "t2v-14B", "480p")


@pytest.mark.parametrize(
    "name",
    [
        "PROVIDER_DAILY_BUDGET_USD",
        "REPLICATE_TIMEOUT_S",
        "OUTPUT_COPY_TIMEOUT_S",
        "STRIPE_RATE_PER_S",
    ],
)
@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "Infinity"])
def test_no_setting_may_be_infinite_or_nan(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    # inf would disable a timeout, overflow a lease or a rate, or fail every create as JSON.
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=name.lower()):
        Settings()


def test_settings_come_from_the_environment_under_explicit_arguments(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAX_ACTIVE_GENERATIONS", "7")
    monkeypatch.setenv("replicate_base_url", "http://lower.example")  # any case matches
    monkeypatch.setenv("FASTAPI_TELEMETRY", "true")
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_from_env")
    monkeypatch.setenv("NOT_A_SETTING", "ignored")
    settings = Settings(max_active_generations=2)
    assert settings.max_active_generations == 2  # the argument wins
    assert settings.replicate_base_url == "http://lower.example"
    assert settings.fastapi_telemetry is True
    assert settings.replicate_api_token is not None
    assert settings.replicate_api_token.get_secret_value() == "r8_from_env"
    assert Settings().max_active_generations == 7


def test_a_bad_environment_value_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATUS_MAX_POLLS", "many")
    with pytest.raises(ValidationError, match="status_max_polls"):
        Settings()
    monkeypatch.setenv("STATUS_MAX_POLLS", "-1")  # below its bound
    with pytest.raises(ValidationError, match="status_max_polls"):
        Settings()
