"""What every answer tells the browser (CSP, Permissions-Policy, caching), HTTPS behind a proxy, the deploy check
with the documented production settings, and files on disk that nobody else on the machine may read."""

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from generations.models import Generation, State
from tests.test_views import finished

PRODUCTION = {  # what README's "Production" section sets
    "DEBUG": "0",
    "SECRET_KEY": "k3y-for-the-deploy-check-only-8f2a9c41d7e6b05f3a1c9e8d7b6a5f4e3d2c1b0a",
    "PUBLIC_BASE_URL": "https://team.example.com",
    "FORWARDED_ALLOW_IPS": "127.0.0.1",
}


def run_django(tmp_path: Path, args: list[str], **env: str) -> subprocess.CompletedProcess:
    """A fresh process with its own settings (read once, from the environment: only these variables, not the
    test run's), under the usual umask."""
    environ = {"PATH": os.environ.get("PATH", ""), "DJANGO_SETTINGS_MODULE": "lumaweb.settings",
               "LUMAWEB_VAR_DIR": str(tmp_path / "var"), "STATIC_ROOT": str(django_settings.STATIC_ROOT), **env}
    return subprocess.run([sys.executable, *args], cwd=django_settings.BASE_DIR, env=environ, capture_output=True,
                          text=True, timeout=120, preexec_fn=lambda: os.umask(0o022))


# --- Content-Security-Policy -----------------------------------------------------------------------


def policy(response) -> dict[str, list[str]]:
    return {name: values for name, *values in (part.split() for part in response["Content-Security-Policy"].split(";"))}


@pytest.mark.django_db
def test_pages_carry_a_strict_content_security_policy_their_own_markup_obeys(alice_client, alice, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    Generation.objects.create(owner=alice, prompt="A clip in flight", state=State.QUEUED, luma_id="live-1")
    finished(alice, "A finished clip")

    page = alice_client.get("/")
    html = page.content.decode()
    csp = policy(page)

    nonce = re.search(r"'nonce-([^']+)'", " ".join(csp["script-src"])).group(1)
    assert csp["script-src"] == ["'self'", f"'nonce-{nonce}'"]
    assert csp["style-src"] == ["'self'"]
    assert (csp["object-src"], csp["base-uri"], csp["frame-ancestors"], csp["form-action"]) == (
        ["'none'"], ["'none'"], ["'none'"], ["'self'"])
    assert "'unsafe-eval'" not in page["Content-Security-Policy"]
    assert "'unsafe-inline'" not in page["Content-Security-Policy"]
    # htmx itself carries the nonce; every other script is a file of ours; nothing needs eval or inline style.
    assert f'nonce="{nonce}"' in re.search(r"<script[^>]*htmx[^>]*>", html).group(0)
    # (JSON data blocks are not run: the browser never executes type="application/json".)
    assert all("nonce=" in tag or "src=" in tag or 'type="application/json"' in tag
               for tag in re.findall(r"<script[^>]*>", html))
    assert not re.search(r"\sstyle=|<style|hx-on|hx-trigger=\"[^\"]*\[", html)
    assert '"allowEval": false' in html and '"includeIndicatorStyles": false' in html
    assert alice_client.get("/accounts/login/")["Content-Security-Policy"]  # and the pages before logging in


# --- Permissions-Policy and caching ----------------------------------------------------------------


@pytest.mark.django_db
def test_every_answer_refuses_camera_microphone_and_location(client, alice_client):
    for response in (client.get("/accounts/login/"), alice_client.get("/")):
        features = response["Permissions-Policy"]
        assert {"camera=()", "microphone=()", "geolocation=()"} <= set(features.split(", "))


@pytest.mark.django_db
def test_signed_in_pages_are_never_stored_but_archived_files_keep_their_private_caching(
        alice_client, alice, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    row = finished(alice, "A fox in the snow")

    for url in ("/", f"/generations/{row.pk}/", "/me/"):
        assert {"private", "no-store"} <= set(alice_client.get(url)["Cache-Control"].split(", ")), url
    assert alice_client.get(f"/generations/{row.pk}/video/")["Cache-Control"] == "private, max-age=86400"


# --- HTTPS -----------------------------------------------------------------------------------------

HTTPS_SCRIPT = """
import json
import django
django.setup()
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
call_command("migrate", verbosity=0)
get_user_model().objects.create_user("alice", password="wonderland-42")
direct = Client(HTTP_HOST="team.example.com")
plain = direct.get("/accounts/login/")
forged = direct.get("/accounts/login/", REMOTE_ADDR="203.0.113.5", HTTP_X_FORWARDED_PROTO="https")
proxied = Client(HTTP_HOST="team.example.com", HTTP_X_FORWARDED_PROTO="https")  # from 127.0.0.1, the proxy
page = proxied.get("/accounts/login/")
login = proxied.post("/accounts/login/", {"username": "alice", "password": "wonderland-42"})
print(json.dumps({
    "plain": [plain.status_code, plain.get("Location")],
    "forged": [forged.status_code, forged.get("Location")],
    "page": [page.status_code, page.get("Strict-Transport-Security")],
    "login": [login.status_code, bool(login.cookies["sessionid"]["secure"])],
}))
"""


def test_behind_https_plain_http_is_redirected_browsers_keep_to_https_and_cookies_are_secure(tmp_path):
    run = run_django(tmp_path, ["-c", HTTPS_SCRIPT], **PRODUCTION)
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout.strip().splitlines()[-1])

    assert seen["plain"] == [301, "https://team.example.com/accounts/login/"]
    # Only the proxy named in FORWARDED_ALLOW_IPS may say the request came over HTTPS.
    assert seen["forged"] == [301, "https://team.example.com/accounts/login/"]
    assert seen["page"] == [200, "max-age=31536000"]
    assert seen["login"] == [302, True]


def test_the_deploy_check_is_clean_with_the_documented_production_settings(tmp_path):
    run = run_django(tmp_path, ["manage.py", "check", "--deploy"], **PRODUCTION)
    assert run.returncode == 0, run.stderr
    assert "System check identified no issues" in run.stdout, run.stdout + run.stderr


# --- files on disk ---------------------------------------------------------------------------------


def others_may_read(path: Path) -> bool:
    return bool(path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))


def test_a_fresh_install_keeps_its_database_and_secret_key_from_other_users(tmp_path):
    run = run_django(tmp_path, ["manage.py", "migrate", "--verbosity=0"])
    assert run.returncode == 0, run.stderr

    var = tmp_path / "var"
    for path in (var, var / "db.sqlite3", var / "secret_key"):
        assert not others_may_read(path), f"{path} is {oct(path.stat().st_mode)}"


def test_an_older_install_with_an_open_var_directory_is_closed_on_start(tmp_path):
    var = tmp_path / "var"
    var.mkdir(mode=0o755)
    var.chmod(0o755)

    run = run_django(tmp_path, ["manage.py", "check"])

    assert run.returncode == 0, run.stderr
    assert not others_may_read(var)
