"""Where a webhook may post: refuses internal addresses (SSRF) unless allow-listed.

A target's host is resolved and every address it resolves to must be public — not loopback,
private, link-local (cloud metadata), multicast, reserved or unspecified — unless the host
name or one of its addresses is in WEBHOOK_ALLOWED_TARGETS (host names and CIDR networks).
Checked when a webhook is saved and again before every delivery, which then connects to the
very address checked (`post`), so a host re-pointed at an internal address between the check
and the connection (DNS rebinding) is not reached.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

import urllib3
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


def check_target(url: str, *, allow: Iterable[str], resolve: Resolver = _resolve) -> list[str]:
    """The addresses `url`'s host resolves to; ValidationError (field `url`) unless it is
    http(s) to a host whose every address is public or allowed."""
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
    return [str(address) for address in addresses]


def post(url: str, address: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST `body` to `url` over a connection to `address` (checked by check_target): the
    Host header, TLS server name and certificate check still use the URL's host. Redirects
    are not followed. Returns the status code; urllib3's HTTPError on failure."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    options = {"timeout": urllib3.Timeout(total=timeout), "retries": False, "maxsize": 1}
    if parts.scheme == "https":
        pool: urllib3.HTTPConnectionPool = urllib3.HTTPSConnectionPool(
            address,
            parts.port or 443,
            server_hostname=host,
            assert_hostname=host,
            ssl_context=ssl.create_default_context(),
            **options,
        )
    else:
        pool = urllib3.HTTPConnectionPool(address, parts.port or 80, **options)
    with pool:
        response = pool.urlopen(
            "POST",
            path,
            body=body,
            headers={**headers, "Host": parts.netloc},
            redirect=False,
            retries=False,
        )
        return response.status
