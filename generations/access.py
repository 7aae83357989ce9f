"""Who may see and change a generation: the one place views ask before touching a row."""

from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404

from .models import Generation


def may_change(user, generation: Generation) -> bool:
    """The owner and staff may delete a generation; everyone on the team may see and continue it."""
    return bool(user.is_staff or (generation.owner_id is not None and generation.owner_id == user.pk))


def generation_for(user, pk: int, *, change: bool = False) -> Generation:
    """The visible generation `pk`, or 404; with change=True, 403 for anyone but its owner and staff."""
    generation = get_object_or_404(
        Generation.objects.visible().select_related("owner", "frame0_generation", "frame1_generation", "source"),
        pk=pk,
    )
    if change and not may_change(user, generation):
        raise PermissionDenied("Only the owner or staff may change this generation.")
    return generation
