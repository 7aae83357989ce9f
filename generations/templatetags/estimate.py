"""`{% estimate_of form as estimate %}`: the price of what the create form, as filled in, would ask for."""

from django import template

from generations import pricing

register = template.Library()


@register.simple_tag
def estimate_of(form) -> pricing.Estimate:
    def value(name: str) -> str:
        return str(form[name].value() or "") if name in form.fields else ""

    # The form's user: an uploaded source is theirs, and priced by its measured size and length.
    return pricing.estimate_for(value, getattr(form, "user", None))
