"""Template tags for the team's money: the budget warning any page can show."""

from django import template

from .. import budgets

register = template.Library()


@register.simple_tag
def budget_warnings(user) -> list[str]:
    """The sentences for each budget `user` is under that is 80% used or more (none for a visitor)."""
    if user is None or not user.is_authenticated:
        return []
    return [standing.warning for standing in budgets.standings(user) if standing.warning]


@register.filter
def usd(cents) -> str:
    """US cents as dollars: 1234 -> $12.34."""
    return budgets.usd(cents or 0)
