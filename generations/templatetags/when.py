"""One way to show a moment everywhere: `{{ value|when }}` is <time datetime="…">1 Dec 2026, 13:20:26</time>."""

from datetime import datetime

from django import template
from django.template.defaultfilters import date as date_filter
from django.utils import timezone
from django.utils.html import format_html

register = template.Library()

# The site's DATETIME_FORMAT (lumaweb/formats/en/formats.py), which the admin shows too: "1 Dec 2026, 13:20:26".
WHEN_FORMAT = "DATETIME_FORMAT"


@register.filter
def when(value: datetime | None) -> str:
    if not value:
        return ""
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    return format_html('<time datetime="{}">{}</time>', value.isoformat(), date_filter(local, WHEN_FORMAT))
