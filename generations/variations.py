"""Variations: "Make N" (1 to 4) from one submission, as a set of rows that share a batch id."""

from __future__ import annotations

import secrets

from django.db import transaction

from . import budgets, pricing
from .models import Generation, Kind

MAX_SET = 4


def request_set(owner, n: int, kind: Kind, client_token: str = "", **fields) -> tuple[list[Generation], bool]:
    """Ask for `n` generations with the same settings, all or none: over a budget (refuse policy) nothing is made
    and budgets.OverBudget says what the whole set costs. Under the approval policy the takes that fit go ahead and
    the rest wait for staff, like single requests. Returns (rows, created): the same client_token returns the set it
    already made, with created=False.

    Admission serves the queue round-robin across owners (admission.in_admission_order), so a set of four takes
    its turns one at a time between other people's requests."""
    if not 1 <= n <= MAX_SET:
        raise ValueError(f"Make between 1 and {MAX_SET} at once.")
    if client_token:
        made = list(Generation.objects.filter(owner=owner, client_token__startswith=f"{client_token[:56]}#")
                    .order_by("pk"))
        if made:
            return made, False
    cost = pricing.estimate_cents(kind, fields.get("model", ""), fields.get("resolution", ""),
                                  fields.get("duration", ""), fields.get("options"))
    over = budgets.check(owner, cost * n)
    if over and n > 1 and not budgets.hold_for_approval():
        raise budgets.OverBudget(over.replace("this costs about", f"these {n} cost about"))
    batch = secrets.token_hex(16) if n > 1 else ""
    with transaction.atomic():
        # Each request checks its own budget as well: the set is refused whole if another request took the room
        # since (OverBudget leaves this block, and the rows made so far go with it).
        rows = [Generation.request(owner, kind=kind, batch=batch,
                                   client_token=f"{client_token[:56]}#{i}" if client_token else "", **fields)[0]
                for i in range(1, n + 1)]
    return rows, True
