"""Site-wide pages around the app: the favicon, the log-out page and the error pages with the usual header."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET, require_http_methods

from .views_library import page_context

FAVICON = settings.BASE_DIR / "static" / "generations" / "favicon.svg"


@require_GET
@cache_control(max_age=86400, public=True)
def favicon(request: HttpRequest) -> HttpResponse:
    """/favicon.ico, which browsers ask for on pages that name no icon (the admin's): our SVG logo."""
    return HttpResponse(FAVICON.read_bytes(), content_type="image/svg+xml")


@require_http_methods(["GET", "POST"])
def logout(request: HttpRequest) -> HttpResponse:
    """Log out by POST (Django's LogoutView); a GET, such as a typed or bookmarked address, asks first."""
    if request.method == "POST":
        return auth_views.LogoutView.as_view()(request)
    context = page_context(request) if request.user.is_authenticated else {}
    return render(request, "registration/logout.html", context)


def _error_page(request: HttpRequest, template: str, status: int, exception: Exception | None) -> HttpResponse:
    # The frame every page has (the credit badge) for someone logged in; the error page must never fail itself.
    context = {"exception": str(exception) if exception and status == 403 else ""}
    if getattr(request, "user", None) is not None and request.user.is_authenticated:
        try:
            context.update(page_context(request))
        except Exception:  # noqa: BLE001 - a broken database must still give the error page
            pass
    return render(request, template, context, status=status)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error_page(request, "404.html", 404, exception)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error_page(request, "403.html", 403, exception)
