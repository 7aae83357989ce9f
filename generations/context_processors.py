"""Template context every page needs."""

from django.http import HttpRequest


def csp_nonce(request: HttpRequest) -> dict:
    """The request's CSP nonce under the name `{% htmx_script %}` reads (Django 6's name), so htmx's own script
    tag carries it. Lazy: a page that never prints it leaves the nonce out of the header."""
    return {"csp_nonce": getattr(request, "csp_nonce", "")}
