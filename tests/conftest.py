"""Shared fixtures: users, logged-in clients, the Luma simulator (tests/plugins/simulator.py), the app wired
to it (tests/plugins/stack.py) and Playwright on Debian's Chromium."""

import os

import pytest

# Playwright's sync API runs an event loop in the test thread; Django's ORM must still be usable there.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytest_plugins = ["tests.plugins.simulator", "tests.plugins.stack", "tests.plugins.browser"]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


@pytest.fixture(autouse=True)
def quick_passwords(settings):
    """Hashing a password as production does takes a few tenths of a second, and most tests make a user or log
    one in; the tests are not about the hash (Django's own tests are)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="wonderland-42")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="builder-4242")


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("carol", password="staff-pass-42", is_staff=True, is_superuser=True)


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture(scope="session", autouse=True)
def collected_static():
    """Pages link hashed static names, as in production, so collect them once per run."""
    from django.core.management import call_command

    call_command("collectstatic", interactive=False, verbosity=0)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Debian's Chromium (playwright install cannot download here), kept off the closed network."""
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": ["--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"],
    }
