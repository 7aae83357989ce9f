"""Which outside URLs lumaweb fetches, or lets Luma fetch: one parser for deciding and for connecting.

A URL is read once, the way requests and urllib3 will read it when they connect; the socket itself then refuses
loopback, private, link-local and other non-public peers unless that host:port is explicitly trusted.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import threading
import unicodedata
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util import parse_url
from urllib3.util.connection import allowed_gai_family
from urllib3.util.timeout import _DEFAULT_TIMEOUT

DEFAULT_PORTS = {"http": 80, "https": 443}
RESOLVE_TIMEOUT = 3.0  # seconds a form waits for DNS before saying the name could not be checked
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnsafeURL(ValueError):
    """A URL we will not fetch (nor let Luma fetch); the message is a sentence saying why, fit to show a user."""


class AddressRefused(UnsafeURL):
    """The host resolved (or connected) to an address that is not public and the host is not trusted."""


@dataclass(frozen=True)
class Target:
    """A URL as requests will send it (`url`) and the scheme, host and port urllib3 will connect to."""

    url: str
    scheme: str
    host: str  # lowercase, IDNA-encoded, IPv6 without brackets
    port: int
    explicit_port: bool
    path: str

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}" if self.explicit_port else host

    @property
    def describe(self) -> str:
        """The URL without its query (which may hold a signature), short enough for a message."""
        path = self.path if len(self.path) <= 120 else self.path[:119] + "…"
        return f"{self.scheme}://{self.netloc}{path}"


def parse(url: object) -> Target:
    """Read url exactly as requests prepares it and urllib3 connects; raise UnsafeURL for anything that is not a
    plain http(s) URL: user:pass@ (any @ before the host), backslashes, whitespace or control characters,
    another scheme, no host, a bad port."""
    if not isinstance(url, str) or not url.strip():
        raise UnsafeURL("The address is empty.")
    shown = _shown(url)
    if "\\" in url:
        raise UnsafeURL(f"The address {shown} contains a backslash, which browsers and servers read differently.")
    if any(char.isspace() or unicodedata.category(char) in ("Cc", "Cf") for char in url):
        raise UnsafeURL(f"The address {shown} contains spaces or control characters.")
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in DEFAULT_PORTS:
        raise UnsafeURL(f"The address {shown} does not start with http:// or https://.")
    authority = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if "@" in authority:
        # Not quoted back: what sits before the @ may be a password.
        raise UnsafeURL("The address carries a user name or password (user:pass@host); leave them out.")
    try:
        given_port = parse_url(url).port
        prepared = requests.Request("GET", url).prepare()
    except (requests.exceptions.RequestException, ValueError):
        raise UnsafeURL(f"The address {shown} is not a valid web address.") from None
    target = _target(prepared.url, shown)
    if given_port is not None and given_port != target.port:  # ":0" is dropped on the way to the wire
        raise UnsafeURL(f"The address {shown} has a port outside 1-65535.")
    return target


def target_of(prepared: requests.PreparedRequest) -> Target:
    """The Target of a request that is about to be sent (after a session merged its defaults into it)."""
    return _target(prepared.url, _shown(prepared.url))


def _target(prepared_url: str, shown: str) -> Target:
    # requests picks the connection pool with urlsplit and urllib3 builds the connection with parse_url: both must
    # agree on scheme, host and port, or the URL is ambiguous and refused.
    try:
        ours = parse_url(prepared_url)
        theirs = urlsplit(prepared_url)
        their_port = theirs.port
    except ValueError:
        raise UnsafeURL(f"The address {shown} is not a valid web address.") from None
    scheme = (ours.scheme or "").lower()
    host = (ours.host or "").lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if (scheme not in DEFAULT_PORTS or not host or ours.auth is not None or theirs.username is not None
            or theirs.scheme.lower() != scheme or (theirs.hostname or "").lower() != host or their_port != ours.port):
        raise UnsafeURL(f"The address {shown} is not a plain http or https address.")
    if ours.port is not None and not 0 < ours.port < 65536:
        raise UnsafeURL(f"The address {shown} has a port outside 1-65535.")
    return Target(prepared_url, scheme, host, ours.port or DEFAULT_PORTS[scheme], ours.port is not None,
                  ours.path or "/")


def _shown(url: str) -> str:
    text = url.split("?", 1)[0]
    text = "".join(char if char.isprintable() and not char.isspace() else "?" for char in text)
    return "'" + (text if len(text) <= 100 else text[:99] + "…") + "'"


# --- addresses ----------------------------------------------------------------------------------------------------

def address_problem(address: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """None for a public unicast address; otherwise what it is ("a loopback address", "a private address", ...).
    An IPv6 address carrying an IPv4 one (mapped, 6to4, NAT64, compatible) is judged by the IPv4 address too."""
    try:
        ip = ipaddress.ip_address(str(address).split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is None and int(ip) >> 32 == 0 and int(ip) > 1:  # deprecated IPv4-compatible ::a.b.c.d
            embedded = ipaddress.IPv4Address(int(ip))
        if embedded is not None:
            problem = address_problem(embedded)
            if problem:
                return problem
    for flag, words in (("is_unspecified", "an unspecified address"), ("is_loopback", "a loopback address"),
                        ("is_link_local", "a link-local address"), ("is_multicast", "a multicast address"),
                        ("is_reserved", "a reserved address"), ("is_private", "a private address")):
        if getattr(ip, flag):
            return words
    if not ip.is_global:
        return "not a public address"
    return None


def host_key(host: str, port: int) -> str:
    """host:port as a trusted-host entry spells it: lowercase, IPv6 in brackets, IP literals canonical."""
    host = host.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return f"{host}:{port}"
    return f"[{ip.compressed}]:{port}" if ip.version == 6 else f"{ip}:{port}"


def normalise_trusted(entries: Iterable[str]) -> frozenset[str]:
    """Trusted entries as host:port keys; "host" alone means its default ports (80 and 443); a URL is cut down
    to its host[:port]."""
    keys = set()
    for entry in entries:
        entry = (entry or "").strip().lower()
        if "//" in entry:
            entry = urlsplit(entry).netloc
        entry = entry.rstrip("/")
        if not entry:
            continue
        try:
            parts = urlsplit(f"//{entry}")
            host, port = parts.hostname, parts.port
        except ValueError:
            continue
        if host:
            keys.update(host_key(host, p) for p in ([port] if port else DEFAULT_PORTS.values()))
    return frozenset(keys)


def is_loopback_name(host: str) -> bool:
    """True for localhost and loopback IP literals: an address that can only mean this machine."""
    host = (host or "").strip().lower().rstrip(".").strip("[]")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def simulator_hosts(base_url: str) -> frozenset[str]:
    """The host:port of a Luma base URL that points at this machine (the simulator); empty for a real Luma."""
    try:
        parts = urlsplit((base_url or "").strip())
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:
        return frozenset()
    if not parts.hostname or not port or not is_loopback_name(parts.hostname):
        return frozenset()
    return frozenset({host_key(parts.hostname, port)})


def literal_hosts(allowed: Iterable[str]) -> frozenset[str]:
    """Allow-list entries that name an IP address (not a name) as host:port keys: listing an address is trusting
    it, since no resolver can move it."""
    literal = set()
    for key in normalise_trusted(entry for entry in allowed if not entry.startswith("*.")):
        host = key.rpartition(":")[0].strip("[]")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            continue
        literal.add(key)
    return frozenset(literal)


def trusted_from_settings() -> frozenset[str]:
    """LUMA_TRUSTED_PRIVATE_HOSTS plus the simulator's own host when LUMA_BASE_URL points at this machine."""
    from django.conf import settings

    if not settings.configured:
        return frozenset()
    extra = getattr(settings, "LUMA_TRUSTED_PRIVATE_HOSTS", ()) or ()
    return normalise_trusted(extra) | simulator_hosts(getattr(settings, "LUMA_BASE_URL", "") or "")


def real_luma_configured() -> bool:
    """True when either of Luma's APIs has a key and a base URL that is not a simulator on this machine: then
    Luma's servers fetch the addresses typed into the form, so they must be public."""
    from django.conf import settings

    for key_name, url_name in (("LUMAAI_API_KEY", "LUMA_BASE_URL"), ("LUMA_AGENTS_API_KEY", "LUMA_AGENTS_BASE_URL")):
        key = (getattr(settings, key_name, "") or "").strip()
        if key and not simulator_hosts(getattr(settings, url_name, "") or ""):
            return True
    return False


def resolve(host: str, port: int) -> list[str]:
    """Every address host resolves to (what a connection may end up on)."""
    infos = socket.getaddrinfo(host, port, allowed_gai_family(), socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


def check_public(url: str, *, trusted: frozenset[str] = frozenset(), timeout: float = RESOLVE_TIMEOUT) -> Target:
    """parse(url), then resolve its host (waiting at most timeout seconds) and raise UnsafeURL unless every
    address is public or host:port is trusted. For URLs handed to someone else to fetch (Luma); what we fetch
    ourselves is checked again on the connected socket (GuardedAdapter)."""
    target = parse(url)
    if host_key(target.host, target.port) in trusted:
        return target
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        addresses = pool.submit(resolve, target.host, target.port).result(timeout=timeout)
    except FutureTimeout:
        raise UnsafeURL(f"{target.host} could not be looked up within {timeout:g} s; try again, or use another "
                        "address.") from None
    except (OSError, UnicodeError):
        raise UnsafeURL(f"{target.host} could not be found: check the address.") from None
    finally:
        pool.shutdown(wait=False)
    for address in addresses:
        problem = address_problem(address)
        if problem:
            raise AddressRefused(f"{target.netloc} leads to {address}, {problem}: use an image on a public "
                                 "web address.")
    return target


# --- the socket-level guard ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Policy:
    """What a guarded connection may reach: `allows(scheme, host, port)` says whether the host is on the
    allow-list; `trusted` host:port keys may resolve to non-public addresses."""

    allowed: frozenset[str]
    trusted: frozenset[str]

    def allows(self, scheme: str, host: str, port: int) -> bool:
        return host_allowed(scheme, host, port, self.allowed)

    def check_address(self, host: str, port: int, address: str) -> None:
        if host_key(host, port) in self.trusted:
            return
        problem = address_problem(address)
        if problem:
            raise AddressRefused(f"{host_key(host, port)} resolves to {address}, {problem}, and is not a trusted "
                                 "host (LUMA_TRUSTED_PRIVATE_HOSTS).")


def host_allowed(scheme: str, host: str, port: int, allowed: frozenset[str]) -> bool:
    """Allow-list matching: "host" allows that host on the scheme's default port, "host:port" exactly that,
    "*.example.com" any subdomain on the default port."""
    host = host.lower().rstrip(".")
    bracketed = f"[{host}]" if ":" in host else host
    names = {f"{bracketed}:{port}"}
    if port == DEFAULT_PORTS.get(scheme):
        names.add(bracketed)
        names.update(f"*.{host.split('.', i)[-1]}" for i in range(1, host.count(".") + 1))
    return bool(names & allowed)


class _GuardedMixin:
    """Resolves, refuses before connecting if any address is not allowed, connects, then checks the peer."""

    policy: Policy
    scheme: str

    def _new_conn(self) -> socket.socket:
        host, port = self.host, self.port
        if not self.policy.allows(self.scheme, host, port):
            raise AddressRefused(f"{host_key(host, port)} is not one of the allowed hosts.")
        try:
            addresses = socket.getaddrinfo(self._dns_host.strip("[]"), port, allowed_gai_family(),
                                           socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise NameResolutionError(host, self, exc) from exc
        # All of them first: a name that mixes public and private records is refused whichever would be tried.
        for *_, sockaddr in addresses:
            self.policy.check_address(host, port, sockaddr[0])
        sock = self._connect_any(addresses)
        try:
            self.policy.check_address(host, port, sock.getpeername()[0])
        except BaseException:
            sock.close()
            raise
        sys.audit("http.client.connect", self, host, port)
        return sock

    def _connect_any(self, addresses) -> socket.socket:
        error: OSError | None = None
        for family, kind, proto, _name, sockaddr in addresses:
            sock = socket.socket(family, kind, proto)
            try:
                for option in self.socket_options or ():
                    sock.setsockopt(*option)
                if self.timeout is not _DEFAULT_TIMEOUT:
                    sock.settimeout(self.timeout)
                if self.source_address:
                    sock.bind(self.source_address)
                sock.connect(sockaddr)
                return sock
            except TimeoutError as exc:
                sock.close()
                raise ConnectTimeoutError(
                    self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})") from exc
            except OSError as exc:
                sock.close()
                error = exc
        raise NewConnectionError(self, f"Failed to establish a new connection: {error or 'no address'}")


class GuardedAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections obey a Policy; never goes through a proxy (send it proxies=None)."""

    def __init__(self, policy: Policy, **kwargs):
        self.policy = policy
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        policy = self.policy
        http = type("GuardedHTTPConnection", (_GuardedMixin, HTTPConnection), {"policy": policy, "scheme": "http"})
        https = type("GuardedHTTPSConnection", (_GuardedMixin, HTTPSConnection),
                     {"policy": policy, "scheme": "https"})
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("GuardedHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
            "https": type("GuardedHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https}),
        }


_adapters: dict[Policy, GuardedAdapter] = {}
_adapters_lock = threading.Lock()


def adapter_for(policy: Policy) -> GuardedAdapter:
    """One adapter (and connection pool) per policy, shared by the threads of this process."""
    with _adapters_lock:
        adapter = _adapters.get(policy)
        if adapter is None:
            adapter = _adapters[policy] = GuardedAdapter(policy)
        return adapter
