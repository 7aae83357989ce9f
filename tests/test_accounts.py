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
