"""Accounts: every page needs a login, except the login page itself."""

import pytest


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


def test_behind_a_proxy_the_public_address_is_allowed_and_its_form_posts_trusted(tmp_path):
    """With only PUBLIC_BASE_URL set, a login posted through an HTTPS proxy under that name is accepted."""
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
client = Client(enforce_csrf_checks=True, HTTP_HOST="team.example.com")
page = client.get("/accounts/login/")
token = page.cookies["csrftoken"].value
answer = client.post("/accounts/login/", {"username": "alice", "password": "wonderland-42",
                     "csrfmiddlewaretoken": token}, HTTP_ORIGIN="https://team.example.com")
print(page.status_code, answer.status_code, answer.get("Location"))
"""
    env = {**os.environ, "PUBLIC_BASE_URL": "https://team.example.com", "LUMAWEB_VAR_DIR": str(tmp_path),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "DJANGO_SETTINGS_MODULE": "lumaweb.settings",
           "ALLOWED_HOSTS": "127.0.0.1", "STATIC_ROOT": str(settings.STATIC_ROOT)}  # collected for this run
    run = subprocess.run([sys.executable, "-c", script], cwd=settings.BASE_DIR, env=env, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["200", "302", "/"]
