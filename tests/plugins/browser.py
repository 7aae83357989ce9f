"""What every browser test (marked e2e) gets without asking: a fixed viewport, static files served as in production,
and a failure for any broken page it sees."""

import pytest

VIEWPORT = {"width": 1280, "height": 800}


def is_browser_test(request) -> bool:
    return request.node.get_closest_marker("e2e") is not None


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": VIEWPORT}


@pytest.fixture(autouse=True)
def static_files_as_in_production(request, monkeypatch):
    """pytest-django's live server answers /static/ itself, through the finders, which know no hashed names
    (collected_static makes pages link them): every stylesheet and script was a 404. Let WhiteNoise serve the
    collected files, as it does in production."""
    if not is_browser_test(request):
        return
    from django.contrib.staticfiles.handlers import StaticFilesHandler

    monkeypatch.setattr(StaticFilesHandler, "_should_handle", lambda self, path: False)


@pytest.fixture(autouse=True)
def no_broken_pages(request):
    """A script error, a missing stylesheet/script or anything the Content-Security-Policy refused (the console
    says so) fails the test, whatever it was looking at."""
    if not is_browser_test(request):
        yield
        return
    page = request.getfixturevalue("page")
    problems = []
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.on("console", lambda m: "Content Security Policy" in m.text and problems.append(f"{m.type}: {m.text}"))
    page.on("response", lambda r: r.status >= 400 and "/static/" in r.url and problems.append(f"{r.status} {r.url}"))
    yield
    assert not problems
