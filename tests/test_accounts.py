"""Accounts: every page needs a login, except the login page itself; guessing passwords is throttled."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

LOGIN = "/accounts/login/"
ALICE_RIGHT = {"username": "alice", "password": "wonderland-42"}
ALICE_WRONG = {"username": "alice", "password": "not-her-password"}


@pytest.mark.django_db
def test_the_dashboard_sends_an_anonymous_visitor_to_the_login_page(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_a_team_member_logs_in_and_sees_the_dashboard(client, alice):
    response = client.post("/accounts/login/", {"username": "alice", "password": "wonderland-42"}, follow=True)
    assert response.status_code == 200
    assert b"Welcome, alice" in response.content


@pytest.mark.django_db
def test_a_wrong_password_shows_a_message_and_logs_nobody_in(client, alice):
    response = client.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content
    assert "_auth_user_id" not in client.session


# --- login throttling (django-axes) ---------------------------------------------------------------


def guess(client, times: int, credentials=ALICE_WRONG, **extra) -> list[int]:
    return [client.post(LOGIN, credentials, **extra).status_code for _ in range(times)]


@pytest.mark.django_db
def test_after_five_wrong_passwords_even_the_right_one_is_refused_with_a_clear_message(client, alice):
    """The 400-guesses attack, in small: the right password straight after the guesses no longer gets in."""
    assert guess(client, 4) == [200] * 4  # the form again, with its message
    assert guess(client, 1) == [429]  # the 5th wrong password locks this username from this address

    right = client.post(LOGIN, ALICE_RIGHT)
    assert right.status_code == 429
    assert "_auth_user_id" not in client.session
    page = right.content.decode()
    assert "Too many failed logins" in page and "Try again in 15 minutes" in page
    assert "Ask an admin: they can unlock it" in page
    assert 'class="topbar"' in page  # the app's own look, not a bare text answer
    assert right["Retry-After"] == "900"
    assert client.get(LOGIN).status_code == 200  # the login page itself stays readable


@pytest.mark.django_db
def test_a_lockout_touches_only_that_username_from_that_address(client, alice, bob):
    guess(client, 5)
    assert client.post(LOGIN, ALICE_RIGHT).status_code == 429

    elsewhere = client.post(LOGIN, ALICE_RIGHT, REMOTE_ADDR="198.51.100.7")
    assert (elsewhere.status_code, elsewhere["Location"]) == (302, "/")
    client.logout()
    bob_here = client.post(LOGIN, {"username": "bob", "password": "builder-4242"})
    assert (bob_here.status_code, bob_here["Location"]) == (302, "/")


@pytest.mark.django_db
def test_a_successful_login_clears_the_count_of_failures(client, alice):
    guess(client, 4)
    assert client.post(LOGIN, ALICE_RIGHT).status_code == 302
    client.logout()
    assert guess(client, 4) == [200] * 4  # four more are allowed again, not one
    assert client.post(LOGIN, ALICE_RIGHT).status_code == 302


@pytest.mark.django_db
def test_a_lockout_ends_after_fifteen_minutes_or_when_an_admin_resets_it(client, alice):
    from axes.models import AccessAttempt

    guess(client, 5)
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=14))
    assert client.post(LOGIN, ALICE_RIGHT).status_code == 429  # and that attempt starts the wait over

    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert client.post(LOGIN, ALICE_RIGHT).status_code == 302
    client.logout()

    guess(client, 5)
    call_command("axes_reset", verbosity=0)
    assert client.post(LOGIN, ALICE_RIGHT).status_code == 302


@pytest.mark.django_db
def test_staff_see_lockouts_in_the_admin(client, alice, staff):
    guess(client, 5)
    client.force_login(staff)

    attempts = client.get("/admin/axes/accessattempt/")

    assert attempts.status_code == 200
    assert "alice" in attempts.content.decode()


@pytest.mark.django_db
def test_behind_a_trusted_proxy_throttling_counts_the_client_not_the_proxy(client, settings, alice):
    """Every request arrives from the proxy's address; the lockout must follow the client it names, and a client
    reaching the server directly cannot pick a new address per guess with a forged X-Forwarded-For."""
    settings.FORWARDED_ALLOW_IPS = ["127.0.0.1"]
    guess(client, 5, HTTP_X_FORWARDED_FOR="203.0.113.9")

    assert client.post(LOGIN, ALICE_RIGHT, HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 429
    assert client.post(LOGIN, ALICE_RIGHT, HTTP_X_FORWARDED_FOR="198.51.100.7").status_code == 302
    client.logout()

    direct = [client.post(LOGIN, ALICE_WRONG, REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR=f"10.9.0.{n}").status_code
              for n in range(6)]
    assert direct == [200] * 4 + [429] * 2


def test_behind_a_proxy_the_public_address_is_allowed_and_its_form_posts_trusted(tmp_path):
    """With PUBLIC_BASE_URL and the proxy's address set, a login posted through that HTTPS proxy is accepted."""
    import os
    import subprocess
    import sys

    from django.conf import settings

    script = """
import django
django.setup()
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
call_command("migrate", verbosity=0)
get_user_model().objects.create_user("alice", password="wonderland-42")
client = Client(enforce_csrf_checks=True, HTTP_HOST="team.example.com", HTTP_X_FORWARDED_PROTO="https")
page = client.get("/accounts/login/")
token = page.cookies["csrftoken"].value
answer = client.post("/accounts/login/", {"username": "alice", "password": "wonderland-42",
                     "csrfmiddlewaretoken": token}, HTTP_ORIGIN="https://team.example.com")
print(page.status_code, answer.status_code, answer.get("Location"))
"""
    env = {**os.environ, "PUBLIC_BASE_URL": "https://team.example.com", "FORWARDED_ALLOW_IPS": "127.0.0.1",
           "LUMAWEB_VAR_DIR": str(tmp_path),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "DJANGO_SETTINGS_MODULE": "lumaweb.settings",
           "ALLOWED_HOSTS": "127.0.0.1", "STATIC_ROOT": str(settings.STATIC_ROOT)}  # collected for this run
    run = subprocess.run([sys.executable, "-c", script], cwd=settings.BASE_DIR, env=env, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["200", "302", "/"]
