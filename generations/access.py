"""Who may see and change a generation (the one place views ask before touching a row), and what can be made
from it."""

from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404

from .models import Generation, State


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


# What Luma can make from a finished generation, by what it is (luma-api.md sections 4-8), as the `how` of
# generations:continue. A video continues (extend, reverse extend, interpolate, a loop remix), is restyled
# (modify video) or reframed; an image becomes a keyframe, a Photon reference, a modify-image source or is
# reframed. Upscale and add audio (their own pages) take videos only.
VIDEO_USES = ("extend", "reverse-extend", "interpolate", "loop", "modify", "reframe")
IMAGE_USES = ("start-frame", "end-frame", "reference", "modify", "reframe")
VIDEO_ONLY = {"extend": "extend", "reverse-extend": "reverse extend", "interpolate": "interpolate",
              "loop": "loop", "upscale": "upscale", "add-audio": "add audio to"}
IMAGE_ONLY = {"start-frame": "a start frame", "end-frame": "an end frame", "reference": "a reference"}


def uses(generation: Generation) -> tuple[str, ...]:
    """The ways to make something new from `generation` that Luma accepts now (empty until it is finished)."""
    if generation.state != State.COMPLETED or generation.deleted_at is not None or not generation.luma_id:
        return ()
    if generation.is_video:
        return VIDEO_USES
    return IMAGE_USES if (generation.image_url or generation.is_archived) else ()


def refusal(generation: Generation, how: str) -> str:
    """Why `generation` cannot be used `how` (a continue `how`, "upscale" or "add-audio"), in plain words;
    "" when it can. "again" (try again with the same settings) is always possible."""
    if how == "again":
        return ""
    number = f"#{generation.pk}"
    if how in VIDEO_ONLY and not generation.is_video:
        return (f"{number} is an image: Luma can only {VIDEO_ONLY[how]} a video. "
                "An image can start or end a video, guide an image as a reference, be modified or be reframed.")
    if how in IMAGE_ONLY and generation.is_video:
        if how == "reference":
            return f"{number} is a video: Photon takes only images as references. Modify or reframe it instead."
        return (f"{number} is a video: to use it as {IMAGE_ONLY[how]}, "
                f"{'extend' if how == 'start-frame' else 'reverse extend'} it instead.")
    if how in uses(generation) or (how in ("upscale", "add-audio") and uses(generation)):
        return ""
    what = "video" if generation.is_video else "image"
    if generation.deleted_at is not None:
        return f"{number} was deleted, so Luma no longer has it. Choose another."
    if generation.state in (State.FAILED, State.REJECTED):
        return f"{number} failed, so there is no {what} to use. Choose another."
    return f"{number} is not a finished {what} yet ({generation.get_state_display().lower()}); try again once it is done."
