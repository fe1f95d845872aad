"""Standard Webhooks 1.0 signatures and the signing secrets' encryption at rest (no database).

A secret is `whsec_` + base64 of 32 random bytes. The signature of a message is
`v1,` + base64(HMAC-SHA256(secret bytes, f"{id}.{timestamp}.{body}")), sent in
`webhook-signature` with `webhook-id` and `webhook-timestamp`
(https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md).
Secrets are stored Fernet-encrypted with a key derived from WEBHOOK_SECRET_KEY (by default
SECRET_KEY), because signing needs the secret itself, not a hash of it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken

PREFIX = "whsec_"


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, message_id, timestamp, body),
        "Content-Type": "application/json",
    }


def _fernet(key_material: str) -> Fernet:
    digest = hashlib.sha256(b"modelgov-webhook-secrets:" + key_material.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(secret: str, key_material: str) -> str:
    return _fernet(key_material).encrypt(secret.encode()).decode()


def decrypt(token: str, key_material: str) -> str:
    """The secret; ValueError when the key changed or the token was altered."""
    try:
        return _fernet(key_material).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("The webhook secret cannot be decrypted with the current key.") from exc
