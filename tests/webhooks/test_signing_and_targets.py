"""Signatures, secrets at rest and target checks, without a database."""

import time

import pytest
from django.core.exceptions import ValidationError
from standardwebhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError

from webhooks import signing
from webhooks.targets import check_target


def test_signed_messages_verify_with_the_standardwebhooks_package():
    secret = signing.new_secret()
    body = b'{"type":"model_version.created","data":{}}'
    headers = signing.headers(secret, "msg_1", int(time.time()), body)
    assert Verifier(secret).verify(body, headers) == {"type": "model_version.created", "data": {}}


def test_a_tampered_body_or_another_secret_fails_verification():
    secret = signing.new_secret()
    headers = signing.headers(secret, "msg_1", int(time.time()), b"{}")
    with pytest.raises(WebhookVerificationError):
        Verifier(secret).verify(b'{"x":1}', headers)
    with pytest.raises(WebhookVerificationError):
        Verifier(signing.new_secret()).verify(b"{}", headers)


def test_secrets_round_trip_encrypted_and_a_changed_key_cannot_read_them():
    secret = signing.new_secret()
    token = signing.encrypt(secret, "key-1")
    assert secret not in token
    assert signing.decrypt(token, "key-1") == secret
    with pytest.raises(ValueError):
        signing.decrypt(token, "key-2")


def _resolver(*addresses):
    return lambda host, port: list(addresses)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.5",
        "192.168.1.1",
        "172.16.0.1",
        "169.254.169.254",
        "::1",
        "0.0.0.0",
        "::ffff:127.0.0.1",
        "100.64.0.1",
        "fd00::1",
    ],
)
def test_internal_addresses_are_refused(address):
    with pytest.raises(ValidationError) as refused:
        check_target("https://hooks.example.com/x", allow=[], resolve=_resolver(address))
    assert "internal address" in str(refused.value)


def test_a_host_resolving_to_any_internal_address_is_refused():
    with pytest.raises(ValidationError):
        check_target(
            "https://hooks.example.com/x", allow=[], resolve=_resolver("93.184.216.34", "10.0.0.1")
        )


def test_public_addresses_pass():
    check_target("https://hooks.example.com/x", allow=[], resolve=_resolver("93.184.216.34"))


def test_the_allow_list_admits_hosts_and_networks():
    check_target("http://127.0.0.1:9000/x", allow=["127.0.0.1"], resolve=_resolver("127.0.0.1"))
    check_target("http://ci.internal/x", allow=["ci.internal"], resolve=_resolver("10.1.2.3"))
    check_target("http://ci.internal/x", allow=["10.1.0.0/16"], resolve=_resolver("10.1.2.3"))


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.com/x",
        "file:///etc/passwd",
        "https://user:pw@example.com/x",
        "http:///nohost",
        "https://example.com:99999/x",
    ],
)
def test_other_schemes_credentials_and_bad_ports_are_refused(url):
    with pytest.raises(ValidationError):
        check_target(url, allow=[], resolve=_resolver("93.184.216.34"))


def test_a_host_that_does_not_resolve_is_refused():
    def fail(host, port):
        raise OSError("no such host")

    with pytest.raises(ValidationError, match="does not resolve"):
        check_target("https://nowhere.invalid/x", allow=[], resolve=fail)
