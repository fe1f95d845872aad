"""Where a webhook may post: refuses internal addresses (SSRF) unless allow-listed.

A target's host is resolved and every address it resolves to must be public — not loopback,
private, link-local (cloud metadata), multicast, reserved or unspecified — unless the host
name or one of its addresses is in WEBHOOK_ALLOWED_TARGETS (host names and CIDR networks).
Checked when a webhook is saved and again before every delivery (DNS can change).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

Resolver = Callable[[str, int], list[str]]


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({info[4][0] for info in infos})


def _internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def _allowed(host: str, address, allow: Iterable[str]) -> bool:
    for entry in allow:
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry == host:
            return True
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def check_target(url: str, *, allow: Iterable[str], resolve: Resolver = _resolve) -> None:
    """ValidationError (field `url`) unless `url` is http(s) to a public or allowed host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError({"url": "Use an http:// or https:// URL with a host."})
    if parts.username or parts.password:
        raise ValidationError({"url": "Credentials in the URL are not allowed."})
    host = parts.hostname.lower()
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise ValidationError({"url": "Invalid port."}) from exc
    allow = list(allow)
    try:
        addresses = [ipaddress.ip_address(a.split("%")[0]) for a in resolve(host, port)]
    except (OSError, UnicodeError, ValueError) as exc:
        raise ValidationError({"url": f"The host '{host}' does not resolve."}) from exc
    if not addresses:
        raise ValidationError({"url": f"The host '{host}' does not resolve."})
    for address in addresses:
        if _internal(address) and not _allowed(host, address, allow):
            raise ValidationError(
                {
                    "url": f"'{host}' resolves to the internal address {address}; webhooks may "
                    "only target public addresses unless WEBHOOK_ALLOWED_TARGETS lists it."
                }
            )
