"""Outgoing HTTP of the simulator (keyframe fetches, callbacks), kept to loopback addresses.

This machine has no network and tests must cause no outside traffic: remote keyframe URLs are never fetched, and
remote callback URLs are only called with --allow-remote-callbacks.
"""

import io
import ipaddress
from urllib.parse import urlsplit

import requests

MAX_INPUT_BYTES = 30 * 1024 * 1024
MAX_MEDIA_BYTES = 100 * 1024 * 1024  # Luma's limit for modify and reframe sources
INPUT_TIMEOUT = 3.0


def is_loopback_url(url: str) -> bool:
    """True for http(s) URLs on 127.0.0.0/8, [::1] or localhost. Names are never resolved: no DNS, no surprises."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def local_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # a proxy from the environment must never see loopback traffic
    return session


def fetch_ok(url: str, image: bool) -> bool:
    """GET a loopback input URL: it must answer 200 and, for keyframes, be a picture Pillow can read."""
    try:
        with local_session() as session, session.get(url, timeout=INPUT_TIMEOUT, stream=True,
                                                     allow_redirects=False) as answer:
            if answer.status_code != 200:
                return False
            if not image:
                return True
            data = bytearray()
            for piece in answer.iter_content(64 * 1024):
                data += piece
                if len(data) > MAX_INPUT_BYTES:
                    return False
        from PIL import Image

        with Image.open(io.BytesIO(bytes(data))) as picture:
            picture.verify()
        return True
    except Exception:  # noqa: BLE001 - anything unreadable is Luma's "Failed to read user input frames"
        return False


def fetch_media(url: str, limit: int = MAX_MEDIA_BYTES) -> tuple[bool, bytes | None]:
    """GET a loopback source video: whether it answered 200, and its bytes when they are no more than limit."""
    try:
        with local_session() as session, session.get(url, timeout=INPUT_TIMEOUT, stream=True,
                                                     allow_redirects=False) as answer:
            if answer.status_code != 200:
                return False, None
            data = bytearray()
            for piece in answer.iter_content(256 * 1024):
                data += piece
                if len(data) > limit:
                    return True, None
            return True, bytes(data)
    except requests.RequestException:
        return False, None
