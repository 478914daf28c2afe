"""Settings from the environment and credentials from the secret (docs/behaviour.md: settings, domain rule)."""

from __future__ import annotations

import pytest

from signal_freshdesk.core.credentials import Credentials, normalise_domain, parse_credentials
from signal_freshdesk.core.errors import ConfigError
from signal_freshdesk.core.settings import Settings

API_KEY = "fd_API_KEY_s3cr3t_value_9Zq"
TOKEN = "wh_TOKEN_s3cr3t_value_0123456789"


def secret(**overrides: object) -> dict:
    base: dict = {"domain": "acme", "api_key": API_KEY, "webhook_token": TOKEN}
    for key, value in overrides.items():
        if value is _DELETE:
            base.pop(key, None)
        else:
            base[key] = value
    return base


_DELETE = object()


# --------------------------------------------------------------------------- Settings.from_env


def test_from_env_defaults():
    settings = Settings.from_env({})
    assert settings.default_phone_region == "GB"
    assert settings.consent_mode == "require"
    assert settings.max_attempts == 202  # the age bound ends retries by default (test_retry_horizon.py)
    assert settings.secret_id == ""
    assert settings.retry_queue_url == ""
    assert settings.base_url_override == ""


def test_from_env_blank_values_mean_defaults():
    settings = Settings.from_env({"CONSENT_MODE": " ", "DEFAULT_PHONE_REGION": "", "MAX_ATTEMPTS": "  "})
    assert (settings.consent_mode, settings.default_phone_region, settings.max_attempts) == ("require", "GB", 202)


def test_from_env_parses_values():
    settings = Settings.from_env(
        {
            "FRESHDESK_SECRET_ID": " arn:aws:secretsmanager:eu-west-1:123456789012:secret:fd ",
            "RETRY_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/retry",
            "FRESHDESK_BASE_URL": "http://127.0.0.1:8080/",
            "DEFAULT_PHONE_REGION": " us ",
            "CONSENT_MODE": " TAG_ONLY ",
            "MAX_ATTEMPTS": " 3 ",
        }
    )
    assert settings.secret_id == "arn:aws:secretsmanager:eu-west-1:123456789012:secret:fd"
    assert settings.retry_queue_url == "https://sqs.eu-west-1.amazonaws.com/123456789012/retry"
    assert settings.base_url_override == "http://127.0.0.1:8080"
    assert settings.default_phone_region == "US"
    assert settings.consent_mode == "tag_only"
    assert settings.max_attempts == 3


@pytest.mark.parametrize("mode", ["require", "tag_only", "off"])
def test_from_env_accepts_each_consent_mode(mode):
    assert Settings.from_env({"CONSENT_MODE": mode}).consent_mode == mode


def test_from_env_reads_os_environ_when_no_mapping_given(monkeypatch):
    monkeypatch.setenv("CONSENT_MODE", "off")
    monkeypatch.setenv("DEFAULT_PHONE_REGION", "FR")
    monkeypatch.delenv("MAX_ATTEMPTS", raising=False)
    settings = Settings.from_env()
    assert (settings.consent_mode, settings.default_phone_region, settings.max_attempts) == ("off", "FR", 202)


@pytest.mark.parametrize("mode", ["maybe", "required", "tag-only", "none", "true"])
def test_bad_consent_mode_is_config_error_naming_the_variable(mode):
    with pytest.raises(ConfigError, match="CONSENT_MODE"):
        Settings.from_env({"CONSENT_MODE": mode})


@pytest.mark.parametrize("region", ["GBR", "G", "G1", "12", "United Kingdom", "G B"])
def test_bad_region_is_config_error_naming_the_variable(region):
    with pytest.raises(ConfigError, match="DEFAULT_PHONE_REGION"):
        Settings.from_env({"DEFAULT_PHONE_REGION": region})


@pytest.mark.parametrize("region", ["UK", "ZZ", "QQ"])
def test_two_letters_that_are_not_an_iso_region_are_config_error(region):
    with pytest.raises(ConfigError, match="DEFAULT_PHONE_REGION"):
        Settings.from_env({"DEFAULT_PHONE_REGION": region})


@pytest.mark.parametrize("raw", ["abc", "3.5", "0", "-1", "eight"])
def test_bad_max_attempts_is_config_error_naming_the_variable(raw):
    with pytest.raises(ConfigError, match="MAX_ATTEMPTS"):
        Settings.from_env({"MAX_ATTEMPTS": raw})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("http://127.0.0.1:8025", "http://127.0.0.1:8025"),
        ("http://127.0.0.1:8025/", "http://127.0.0.1:8025"),
        ("http://localhost:8025", "http://localhost:8025"),
        ("http://LOCALHOST:8025", "http://LOCALHOST:8025"),
        ("http://[::1]:8025", "http://[::1]:8025"),
        ("https://127.0.0.1:8443", "https://127.0.0.1:8443"),
        ("http://127.0.0.9:80", "http://127.0.0.9:80"),  # all of 127.0.0.0/8 is loopback
        ("", ""),
        ("  ", ""),
    ],
)
def test_freshdesk_base_url_is_honoured_for_loopback_hosts(raw, expected):
    assert Settings.from_env({"FRESHDESK_BASE_URL": raw}).base_url_override == expected


@pytest.mark.parametrize(
    "raw",
    [
        "https://evil.example.com",
        "https://acme.freshdesk.com",  # even Freshdesk: the domain comes from the secret, not from here
        "http://10.0.0.5:8025",
        "http://169.254.169.254",
        "http://0.0.0.0:8025",
        "http://[::]:8025",
        "http://127.0.0.1.nip.io:8025",
        "http://localhost.example.com",
        "http://2130706433:8025",  # 127.0.0.1 as an integer: not an address ipaddress (or we) accept
        "http://host.docker.internal:8025",  # only under sam local (AWS_SAM_LOCAL=true)
        "http://user:pass@127.0.0.1:8025",
        "ftp://127.0.0.1",
        "127.0.0.1:8025",
        "http://127.0.0.1:99999",
        "http://[::1",
    ],
)
def test_freshdesk_base_url_elsewhere_is_a_config_error(raw):
    with pytest.raises(ConfigError, match="FRESHDESK_BASE_URL may only point at a Freshdesk stand-in on this machine"):
        Settings.from_env({"FRESHDESK_BASE_URL": raw})


def test_freshdesk_base_url_refusal_names_the_host_but_never_credentials():
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"FRESHDESK_BASE_URL": "https://evil.example.com/steal"})
    assert "'evil.example.com' is not loopback" in str(refused.value)
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"FRESHDESK_BASE_URL": "http://user:pa55word@127.0.0.1:8025"})
    assert "must not hold credentials" in str(refused.value)
    assert "pa55word" not in str(refused.value) and "user:" not in str(refused.value)


def test_freshdesk_base_url_may_name_the_docker_host_only_under_sam_local():
    sam_local = {"FRESHDESK_BASE_URL": "http://host.docker.internal:8025", "AWS_SAM_LOCAL": "true"}
    assert Settings.from_env(sam_local).base_url_override == "http://host.docker.internal:8025"
    with pytest.raises(ConfigError, match="not loopback"):
        Settings.from_env({**sam_local, "AWS_SAM_LOCAL": "false"})
    with pytest.raises(ConfigError, match="not loopback"):
        Settings.from_env({**sam_local, "FRESHDESK_BASE_URL": "http://other.internal:8025"})


# --------------------------------------------------------------------------- parse_credentials


def test_parse_credentials_valid():
    creds = parse_credentials(secret())
    assert creds == Credentials(domain="acme", api_key=API_KEY, webhook_token=TOKEN)
    assert creds.base_url() == "https://acme.freshdesk.com"
    assert creds.base_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080"


def test_parse_credentials_trims_values():
    creds = parse_credentials(secret(domain=" acme ", api_key=f" {API_KEY} ", webhook_token=f" {TOKEN}\n"))
    assert (creds.domain, creds.api_key, creds.webhook_token) == ("acme", API_KEY, TOKEN)


@pytest.mark.parametrize(
    "domain",
    [
        "https://acme.freshdesk.com",
        "https://acme.freshdesk.com/",
        "http://acme.freshdesk.com",
        "HTTPS://ACME.FRESHDESK.COM",
        "ACME",
        "Acme",
        "acme",
    ],
)
def test_domain_reduces_to_subdomain(domain):
    assert normalise_domain(domain) == "acme"
    assert parse_credentials(secret(domain=domain)).domain == "acme"


@pytest.mark.parametrize("domain", ["acme-support", "a", "a1", "123", "a" * 63])
def test_domain_accepts_dns_labels(domain):
    assert normalise_domain(domain) == domain


@pytest.mark.parametrize(
    "domain",
    [
        "acme.evil.com",
        "evil.com/acme",
        "https://acme.freshdesk.com.evil.com",
        "https://evil.com/acme.freshdesk.com",
        "https://acme.freshdesk.com@evil.com",
        "https://acme.freshdesk.com:8443",
        "https://acme.freshdesk.com/api/v2",
        "acme.freshdesk.com",
        "acme@evil",
        "a b",
        "acme/",
        "acme_support",
        "",
        "   ",
        "-acme",
        "acme-",
        "-",
        "a" * 64,
        "REPLACE_WITH_YOUR_SUBDOMAIN",
        None,
        42,
        ["acme"],
    ],
)
def test_bad_domain_is_rejected(domain):
    with pytest.raises(ConfigError):
        parse_credentials(secret(domain=domain))


def test_missing_domain_is_rejected():
    with pytest.raises(ConfigError, match="domain"):
        parse_credentials(secret(domain=_DELETE))


def test_placeholder_domain_message_says_placeholder():
    with pytest.raises(ConfigError, match="placeholder"):
        parse_credentials(secret(domain="REPLACE_WITH_YOUR_SUBDOMAIN"))


def test_placeholder_api_key_is_rejected():
    with pytest.raises(ConfigError, match="api_key"):
        parse_credentials(secret(api_key="REPLACE_WITH_YOUR_API_KEY"))


@pytest.mark.parametrize("api_key", [_DELETE, None, "", "   ", 12345, ["k"]])
def test_missing_api_key_is_rejected(api_key):
    with pytest.raises(ConfigError, match="api_key"):
        parse_credentials(secret(api_key=api_key))


@pytest.mark.parametrize("token", [_DELETE, None, "", 1234567890123456789, "x" * 15, "  " + "x" * 15 + "  "])
def test_webhook_token_missing_or_shorter_than_16_is_rejected(token):
    with pytest.raises(ConfigError, match="webhook_token"):
        parse_credentials(secret(webhook_token=token))


def test_webhook_token_of_16_characters_is_accepted():
    assert parse_credentials(secret(webhook_token="x" * 16)).webhook_token == "x" * 16


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "acme",
        ["acme", "key", "token"],
        42,
        '{"domain": "acme", "api_key": "k", "webhook_token": "0123456789abcdef"}',
    ],
)
def test_non_dict_secret_is_rejected(raw):
    with pytest.raises(ConfigError):
        parse_credentials(raw)


@pytest.mark.parametrize(
    "bad",
    [
        secret(domain="acme.evil.com"),
        secret(domain=API_KEY),  # the key pasted into the wrong field
        secret(domain=f"https://{TOKEN}.evil.com"),
        secret(domain=""),
        secret(domain="REPLACE_WITH_YOUR_SUBDOMAIN"),
        secret(api_key="REPLACE_WITH_YOUR_API_KEY"),
        secret(api_key=""),
        secret(webhook_token=API_KEY[:10]),
        secret(webhook_token=TOKEN[:15]),
        secret(webhook_token=None),
        [API_KEY, TOKEN],
    ],
)
def test_config_error_never_holds_the_api_key_or_token(bad):
    with pytest.raises(ConfigError) as caught:
        parse_credentials(bad)
    text = f"{caught.value} {caught.value!r} {caught.value.args!r}"
    for value in (API_KEY, TOKEN, API_KEY[:10], TOKEN[:15]):
        assert value not in text
    assert str(caught.value)  # says what to fix


def test_credentials_repr_hides_the_api_key_and_token():
    creds = parse_credentials(secret())
    for text in (repr(creds), str(creds), f"{creds}", f"{creds!r}"):
        assert API_KEY not in text
        assert TOKEN not in text
        assert "acme" in text
