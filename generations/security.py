"""Hardening around every request: which peer may speak for the client (forwarded headers), the address login
throttling counts by, the answer to a locked-out login, and the headers every page carries."""

import functools
import ipaddress
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.cache import patch_cache_control

# Powerful browser features the app never uses, refused for it and anything it might embed.
PERMISSIONS_POLICY = ", ".join(f"{feature}=()" for feature in (
    "accelerometer", "camera", "display-capture", "geolocation", "gyroscope", "magnetometer", "microphone",
    "payment", "usb",
))
# Headers only a proxy we trust may set: the scheme (request.is_secure), the client's address (throttling) and host.
FORWARDED_HEADERS = ("HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_HOST",
                     "HTTP_X_FORWARDED_PORT", "HTTP_FORWARDED")


@functools.cache
def _networks(entries: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    try:
        return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries if entry != "*")
    except ValueError as error:
        raise ImproperlyConfigured(f"FORWARDED_ALLOW_IPS: {error}") from error


def _is_trusted_proxy(address: str | None) -> bool:
    allowed = tuple(settings.FORWARDED_ALLOW_IPS)
    if "*" in allowed:
        return True
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return False
    return any(ip in network for network in _networks(allowed))


def forwarded_headers_middleware(get_response: Callable[[HttpRequest], HttpResponse]):
    """Drop X-Forwarded-* unless the peer is a proxy named in FORWARDED_ALLOW_IPS.

    The WSGI server passes these headers through from anyone who can reach it; without this, a client talking to
    the server directly could claim HTTPS (secure cookies, no redirect) or any address (dodging login throttling).
    """

    def middleware(request: HttpRequest) -> HttpResponse:
        if not _is_trusted_proxy(request.META.get("REMOTE_ADDR")):
            for header in FORWARDED_HEADERS:
                request.META.pop(header, None)
        return get_response(request)

    return middleware


def client_ip(request: HttpRequest) -> str | None:
    """The client's address for login throttling: the peer, or behind trusted proxies the nearest address in
    X-Forwarded-For that is not one of them (what the outermost trusted proxy saw)."""
    address = request.META.get("REMOTE_ADDR")
    if not _is_trusted_proxy(address):
        return address
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    untrusted = [hop for hop in hops if not _is_trusted_proxy(hop)]
    return untrusted[-1] if untrusted else (hops[-1] if hops else address)


def locked_out(request: HttpRequest, original_response: HttpResponse | None = None,
               credentials: dict | None = None) -> HttpResponse:
    """django-axes' answer once a username has failed too often from one address: a page in the app's look."""
    cool_off: timedelta = settings.AXES_COOLOFF_TIME
    response = render(request, "registration/locked_out.html", {
        "minutes": round(cool_off.total_seconds() / 60),
        "until": timezone.localtime() + cool_off,
        "failure_limit": settings.AXES_FAILURE_LIMIT,
    }, status=429)
    response["Retry-After"] = str(int(cool_off.total_seconds()))
    return response


def security_headers_middleware(get_response: Callable[[HttpRequest], HttpResponse]):
    """Permissions-Policy on every answer; a signed-in page is never stored by a browser or a shared cache
    (archived files set their own private caching and keep it)."""

    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        response.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and not response.has_header("Cache-Control"):
            patch_cache_control(response, private=True, no_store=True)
        return response

    return middleware
