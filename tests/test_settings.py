"""Settings: load order, validation, and refusal of insecure production configurations."""

import pytest

from psc_idp.settings import SettingsError, load

SECRET = "x" * 40


def test_defaults_follow_psc():
    values = load({"secret_key": SECRET}, environ={})
    assert values.issuer.endswith("/auth/realms/esante-wallet")
    assert values.access_token_lifetime == 120
    assert values.code_lifetime == 60
    assert values.acr == {"card": "eidas1", "ecps": "eidas1"}
    assert values.crl_stale_policy == "fail_closed"


def test_environment_overrides_toml(tmp_path):
    config = tmp_path / "idp.toml"
    config.write_text('issuer = "https://toml.example/auth/realms/esante-wallet"\n'
                      'access_token_lifetime = 90\n')
    environ = {"PSC_IDP_CONFIG": str(config), "PSC_IDP_ACCESS_TOKEN_LIFETIME": "60",
               "PSC_IDP_SECRET_KEY": SECRET}
    values = load(environ=environ)
    assert values.issuer == "https://toml.example/auth/realms/esante-wallet"
    assert values.access_token_lifetime == 60


@pytest.mark.parametrize("environ, message", [
    ({"PSC_IDP_NOPE": "1"}, "unknown setting PSC_IDP_NOPE"),
    ({"PSC_IDP_CODE_LIFETIME": "soon"}, "must be an integer"),
    ({"PSC_IDP_TRUSTED_PROXIES": "[oops"}, "must be JSON"),
])
def test_bad_environment_is_named(environ, message):
    with pytest.raises(SettingsError, match=message):
        load({"secret_key": SECRET}, environ=environ)


def test_bad_toml_is_named(tmp_path):
    config = tmp_path / "idp.toml"
    config.write_text("issuer = \n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load(environ={"PSC_IDP_CONFIG": str(config)})


def test_wrong_type_in_toml(tmp_path):
    config = tmp_path / "idp.toml"
    config.write_text('code_lifetime = "60"\n')
    with pytest.raises(SettingsError, match="code_lifetime .* must be int"):
        load({"secret_key": SECRET}, environ={"PSC_IDP_CONFIG": str(config)})


def test_secret_key_is_required():
    with pytest.raises(SettingsError, match="secret_key"):
        load(environ={})


def test_production_refuses_insecure_settings():
    with pytest.raises(SettingsError) as error:
        load({"secret_key": SECRET, "mode": "production", "issuer": "http://idp.example",
              "cookie_secure": False, "crl_stale_policy": "fail_open"}, environ={})
    for key in ("issuer", "cookie_secure", "crl_stale_policy", "keys_passphrase",
                "card_trust_anchors"):
        assert key in str(error.value)


def test_production_accepts_a_secure_configuration():
    values = load({"secret_key": SECRET, "mode": "production", "keys_passphrase": "p" * 20,
                   "card_trust_anchors": ["/etc/psc-idp/ca.pem"], "sms_gateway": "http",
                   "sms_http_url": "https://sms.example/send"}, environ={})
    assert values.mode == "production"


def test_settings_are_typed_and_read_only():
    import dataclasses

    values = load({"secret_key": SECRET}, environ={})
    assert isinstance(values.access_token_lifetime, int) and isinstance(values.acr, dict)
    with pytest.raises(dataclasses.FrozenInstanceError):
        values.issuer = "https://elsewhere.example"
    with pytest.raises(AttributeError):
        values.no_such_setting  # noqa: B018 - reading it is the test
