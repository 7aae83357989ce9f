"""Asset downloads and keyframe addresses cannot be aimed at our own network: one parser decides and connects,
refused addresses are never connected to (a real canary server counts connections), and what a host answers is
never repeated to users."""

import http.server
import socket
import threading
from urllib.parse import urlsplit

import pytest

from generations import luma
from generations.forms import CreateForm
from generations.models import LumaAccount

CDN = "storage.cdn-luma.com"


class Canary(http.server.ThreadingHTTPServer):
    """A real HTTP server on 127.0.0.1 that counts every TCP connection it accepts; GET answers `answer`."""

    daemon_threads = True

    def __init__(self, answer=(200, {}, b"canary")):
        self.connections = 0
        self.paths: list[str] = []
        self.answer = answer
        super().__init__(("127.0.0.1", 0), _CanaryHandler)

    def verify_request(self, request, client_address) -> bool:
        self.connections += 1
        return True

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.port}"


class _CanaryHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.paths.append(self.path)
        status, headers, body = self.server.answer
        self.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self):
        self.server.paths.append(self.path)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def serve(server: Canary):
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server


@pytest.fixture
def canary():
    server = serve(Canary())
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def origin():
    """A second real server (the "asset host") whose answer each test sets."""
    server = serve(Canary())
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def real_luma(settings):
    """Settings as with a real Luma key: nothing on this machine is the simulator."""
    settings.LUMAAI_API_KEY = "luma-real-key"
    settings.LUMA_BASE_URL = "https://api.lumalabs.ai/dream-machine/v1"
    settings.LUMA_TRUSTED_PRIVATE_HOSTS = []
    return settings


@pytest.fixture
def connects(monkeypatch):
    """Every outgoing connect() of this process, recorded (and refused for anything but 127.0.0.1/::1)."""
    attempts = []
    real = socket.socket

    class Recording(real):
        def connect(self, address):
            attempts.append(address[0])
            if address[0] not in ("127.0.0.1", "::1"):
                raise OSError(101, "Network is unreachable (test)")
            return super().connect(address)

    monkeypatch.setattr(socket, "socket", Recording)
    return attempts


def client_for(*hosts, timeout=(1.0, 2.0)) -> luma.LumaClient:
    return luma.LumaClient("luma-key", "https://api.lumalabs.ai/dream-machine/v1", timeout=timeout,
                           allowed_asset_hosts=list(hosts))


def download(client, url) -> bytes:
    with client.open_asset(url) as asset:
        return b"".join(asset.iter_chunks())


def fake_resolver(monkeypatch, names: dict[str, list[str]]):
    """Resolve the given names to the given addresses; everything else as usual."""
    real = socket.getaddrinfo

    def getaddrinfo(host, port, family=0, kind=0, proto=0, flags=0):
        if host in names:
            return [(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                     (ip, port, 0, 0) if ":" in ip else (ip, port)) for ip in names[host]]
        return real(host, port, family, kind, proto, flags)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


# --- the asset archiver ------------------------------------------------------------------------------------------

def test_a_backslash_url_is_refused_before_the_host_urllib3_would_reach_is_contacted(canary, origin, real_luma):
    client = client_for(origin.netloc)
    with pytest.raises(luma.LumaAssetHostNotAllowed, match="backslash"):
        download(client, f"http://127.0.0.1:{canary.port}\\@{origin.netloc}/assets/x/video.mp4")
    assert canary.connections == 0 and origin.connections == 0


def test_the_metadata_address_behind_a_backslash_is_never_connected_to(connects, real_luma):
    client = client_for(CDN, timeout=(0.5, 0.5))
    with pytest.raises(luma.LumaAssetHostNotAllowed):
        download(client, f"http://169.254.169.254\\@{CDN}/latest/meta-data/iam/security-credentials/")
    assert connects == []


def test_user_and_password_in_an_asset_url_are_refused_without_a_request(canary, real_luma):
    client = client_for(canary.netloc)
    with pytest.raises(luma.LumaAssetHostNotAllowed, match="user name or password"):
        download(client, f"http://admin:secret@{canary.netloc}/x.mp4")
    with pytest.raises(luma.LumaAssetHostNotAllowed):
        download(client, f"http://{CDN}@{canary.netloc}/x.mp4")
    assert canary.connections == 0


def test_an_allowed_name_that_resolves_to_loopback_is_never_connected_to(canary, real_luma):
    client = client_for(f"localhost:{canary.port}")
    with pytest.raises(luma.LumaAssetHostNotAllowed, match="loopback"):
        download(client, f"http://localhost:{canary.port}/secret")
    assert canary.connections == 0


def test_a_trusted_private_host_is_fetched(canary, real_luma):
    real_luma.LUMA_TRUSTED_PRIVATE_HOSTS = [f"localhost:{canary.port}"]
    assert download(client_for(f"localhost:{canary.port}"), f"http://localhost:{canary.port}/ok") == b"canary"
    assert canary.paths == ["/ok"]


def test_a_redirect_to_an_allowed_name_on_loopback_is_refused_on_that_hop(canary, origin, real_luma):
    origin.answer = (302, {"Location": f"http://localhost:{canary.port}/internal"}, b"")
    client = client_for(origin.netloc, f"localhost:{canary.port}")
    with pytest.raises(luma.LumaAssetHostNotAllowed, match="loopback"):
        download(client, f"http://{origin.netloc}/assets/video.mp4")
    assert origin.paths == ["/assets/video.mp4"]
    assert canary.connections == 0


def test_a_redirect_with_a_backslash_is_refused_on_that_hop(canary, origin, real_luma):
    origin.answer = (302, {"Location": f"http://127.0.0.1:{canary.port}\\@{origin.netloc}/x"}, b"")
    with pytest.raises(luma.LumaAssetHostNotAllowed):
        download(client_for(origin.netloc), f"http://{origin.netloc}/assets/video.mp4")
    assert canary.connections == 0


@pytest.mark.parametrize("addresses", [["169.254.169.254"], ["10.0.0.7"], ["93.184.216.34", "127.0.0.1"],
                                       ["::ffff:127.0.0.1"], ["fe80::1"], ["::1"], ["0.0.0.0"]])
def test_a_name_resolving_to_any_non_public_address_is_refused_before_connecting(monkeypatch, connects, real_luma,
                                                                                 addresses):
    fake_resolver(monkeypatch, {"cdn.evil.test": addresses})
    client = client_for("cdn.evil.test", timeout=(0.5, 0.5))
    with pytest.raises(luma.LumaAssetHostNotAllowed):
        download(client, "https://cdn.evil.test/video.mp4")
    assert connects == []


def test_the_simulators_own_host_stays_trusted(origin, settings):
    settings.LUMAAI_API_KEY = "sim-key"
    settings.LUMA_BASE_URL = f"http://localhost:{origin.port}/dream-machine/v1"
    client = luma.LumaClient("k", settings.LUMA_BASE_URL, allowed_asset_hosts=[f"localhost:{origin.port}"])
    assert download(client, f"http://localhost:{origin.port}/assets/v.mp4") == b"canary"


def test_what_an_asset_host_answers_is_never_put_in_the_error(origin, real_luma):
    origin.answer = (500, {}, b"<h1>internal admin</h1> db_password=hunter2")
    with pytest.raises(luma.LumaServerError) as caught:
        download(client_for(origin.netloc), f"http://{origin.netloc}/x.mp4")
    assert "500" in str(caught.value)
    assert "hunter2" not in str(caught.value) and "admin" not in str(caught.value)
    assert "hunter2" not in caught.value.detail
    origin.answer = (403, {}, b"<Error>AccessDenied for internal bucket</Error>")
    with pytest.raises(luma.LumaAssetExpired) as caught:
        download(client_for(origin.netloc), f"http://{origin.netloc}/x.mp4")
    assert "403" in str(caught.value) and "bucket" not in str(caught.value) + caught.value.detail


@pytest.mark.parametrize(("address", "problem"), [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("::ffff:127.0.0.1", "loopback"), ("10.1.2.3", "private"),
    ("192.168.1.1", "private"), ("172.16.0.1", "private"), ("169.254.169.254", "link-local"),
    ("fe80::1", "link-local"), ("::ffff:169.254.169.254", "link-local"), ("224.0.0.1", "multicast"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"), ("fc00::1", "private"), ("100.64.0.1", "public"),
    ("2002:7f00:1::", "loopback"), ("64:ff9b::a9fe:a9fe", "link-local"), ("240.0.0.1", "reserved"),
])
def test_non_public_addresses_are_named(address, problem):
    from generations import urlsafety

    assert problem in (urlsafety.address_problem(address) or "")


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "8.8.8.8"])
def test_public_addresses_pass(address):
    from generations import urlsafety

    assert urlsafety.address_problem(address) is None


@pytest.mark.parametrize("url", [
    "http://a.example\\@b.example/x", "http://u:p@a.example/x", "http://@a.example/x", "javascript:alert(1)",
    "file:///etc/passwd", "gopher://a.example/", "http://a.example/x y", "http://a.example/\x00",
    "http://a.example\t/x", "http://a.example:0/x", "http://a.example:99999/x", "http:///x", "",
])
def test_the_parser_refuses_anything_but_a_plain_http_url(url):
    from generations import urlsafety

    with pytest.raises(urlsafety.UnsafeURL):
        urlsafety.parse(url)


def test_the_parser_reports_the_host_and_port_urllib3_connects_to():
    from generations import urlsafety

    target = urlsafety.parse("HTTPS://Storage.CDN-luma.com/dream_machine/v.mp4?sig=secret")
    assert (target.scheme, target.host, target.port, target.explicit_port) == ("https", CDN, 443, False)
    assert target.describe == f"https://{CDN}/dream_machine/v.mp4"
    assert urlsafety.parse("http://[::1]:8200/x").netloc == "[::1]:8200"


# --- keyframe addresses typed into the create form ---------------------------------------------------------------

@pytest.fixture
def account(db):
    return LumaAccount.get()


def frame_error(account, url, slot="frame0") -> str:
    form = CreateForm({"what": "video", "prompt": "A kite", slot: "url", f"{slot}_url": url}, {}, account=account)
    assert not form.is_valid()
    return " ".join(form.errors.get(f"{slot}_url", []))


@pytest.mark.parametrize(("url", "words"), [
    ("http://127.0.0.1:8200/admin.png", "loopback"),
    ("http://localhost/a.jpg", "loopback"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://10.0.0.5/a.jpg", "private"),
    ("http://[::ffff:127.0.0.1]/a.jpg", "loopback"),
    ("https://user:pass@example.com/a.jpg", "user name or password"),
])
def test_with_a_real_key_a_keyframe_address_into_a_private_network_is_refused_next_to_the_field(
        account, real_luma, url, words):
    assert words in frame_error(account, url)
    assert words in frame_error(account, url, slot="frame1")


def test_a_keyframe_host_that_cannot_be_found_gets_a_clear_message(account, real_luma, monkeypatch):
    def no_such_host(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    assert "could not be found" in frame_error(account, "https://no-such-host.invalid/a.jpg")


def test_with_a_real_key_a_public_keyframe_address_is_accepted(account, real_luma, monkeypatch):
    fake_resolver(monkeypatch, {"images.example.com": ["93.184.216.34"]})
    form = CreateForm({"what": "video", "prompt": "A kite", "frame0": "url",
                       "frame0_url": "https://images.example.com/kite.jpg"}, {}, account=account)
    assert form.is_valid(), form.errors


def test_with_the_simulator_a_loopback_keyframe_address_is_fine_but_user_and_password_are_not(account, settings):
    settings.LUMAAI_API_KEY = "sim-key"
    settings.LUMA_BASE_URL = "http://127.0.0.1:9011/dream-machine/v1"
    netloc = urlsplit(settings.LUMA_BASE_URL).netloc
    form = CreateForm({"what": "video", "prompt": "A kite", "frame0": "url",
                       "frame0_url": f"http://{netloc}/static/kite.jpg"}, {}, account=account)
    assert form.is_valid(), form.errors
    assert "user name or password" in frame_error(account, f"http://u:p@{netloc}/static/kite.jpg")
    assert frame_error(account, f"http://{netloc}\\@example.com/kite.jpg")


def test_with_only_a_real_agents_key_a_keyframe_address_into_a_private_network_is_refused(account, settings):
    """Ray 3.2 / Uni-1 alone (no Dream Machine key): Luma's Agents servers fetch typed addresses just the same."""
    settings.LUMAAI_API_KEY = ""
    settings.LUMA_AGENTS_API_KEY = "agents-real-key"
    settings.LUMA_AGENTS_BASE_URL = "https://agents.lumalabs.ai/v1"
    settings.LUMA_TRUSTED_PRIVATE_HOSTS = []
    assert "link-local" in frame_error(account, "http://169.254.169.254/latest/meta-data/")


def test_a_presigned_upload_goes_only_to_an_allowed_storage_host_and_never_through_a_proxy(canary, origin, tmp_path,
                                                                                          monkeypatch, real_luma):
    """The Files API's PUT address comes from Luma's answer: it is checked as a download address is."""
    from generations.luma_agents import AgentsClient
    from generations.luma_errors import LumaAssetHostNotAllowed

    picture = tmp_path / "frame.png"
    picture.write_bytes(b"\x89PNG not really")
    client = AgentsClient("agents-key", "https://agents.lumalabs.ai/v1", timeout=(1.0, 2.0),
                          allowed_asset_hosts=["*.amazonaws.com"])
    with pytest.raises(LumaAssetHostNotAllowed, match="Refusing to upload to"):
        client._put(f"http://{canary.netloc}/bucket/frame.png?X-Amz-Signature=abc", picture, {})
    monkeypatch.setenv("HTTP_PROXY", f"http://{canary.netloc}")  # a proxy would have been asked to connect for us
    allowed = AgentsClient("agents-key", "https://agents.lumalabs.ai/v1", timeout=(1.0, 2.0),
                           allowed_asset_hosts=[origin.netloc])
    allowed._put(f"http://{origin.netloc}/bucket/frame.png?X-Amz-Signature=abc", picture, {})
    assert canary.connections == 0 and origin.paths == ["/bucket/frame.png?X-Amz-Signature=abc"]
