"""One way to show a moment everywhere: `{{ value|when }}` is <time datetime="…">1 Dec 2026, 13:20:26</time>."""

from datetime import datetime

from django import template
from django.template.defaultfilters import date as date_filter
from django.utils import timezone
from django.utils.html import format_html

register = template.Library()

# Day, month and year, then the 24-hour time to the second (a generation's events are seconds apart).
WHEN_FORMAT = "j M Y, H:i:s"


@register.filter
def when(value: datetime | None) -> str:
    if not value:
        return ""
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    return format_html('<time datetime="{}">{}</time>', value.isoformat(), date_filter(local, WHEN_FORMAT))
