"""Camera motions and concepts for the create form: Luma's lists, cached on LumaAccount by a job, read on demand
(briefly) when the cache is still empty, with a built-in list when Luma cannot be reached."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone

from . import luma
from .models import LumaAccount

log = logging.getLogger(__name__)

# Luma's concept keys as published (luma-api.md section 10, a snapshot; Luma's own list replaces it when read).
FALLBACK_CONCEPTS = [
    "aerial", "aerial_drone", "bolt_cam", "crane_down", "crane_up", "dolly_zoom", "elevator_doors", "eye_level",
    "ground_level", "handheld", "high_angle", "low_angle", "orbit_left", "orbit_right", "over_the_shoulder",
    "overhead", "pan_left", "pan_right", "pedestal_down", "pedestal_up", "pov", "pull_out", "push_in", "roll_left",
    "roll_right", "selfie", "static", "tilt_down", "tilt_up", "tiny_planet", "truck_left", "truck_right", "zoom_in",
    "zoom_out",
]
# Camera-motion phrases to type into a prompt (luma-api.md section 2, the legacy list).
FALLBACK_CAMERA_MOTIONS = [
    "camera orbit left", "camera orbit right", "camera push in", "camera pull out", "camera pan left",
    "camera pan right", "camera tilt up", "camera tilt down", "camera zoom in", "camera zoom out", "camera crane up",
    "camera crane down", "camera truck left", "camera truck right", "camera static", "camera handheld",
]
# A page that finds the cache empty waits at most this long per list (two lists, one try each): about 3 s.
ON_DEMAND_SECONDS = 1.5
# After a failed read on demand, pages use the built-in lists for this long before asking Luma again.
ON_DEMAND_AGAIN = timedelta(minutes=1)


def read(client: luma.LumaClient) -> dict:
    """Luma's lists as LumaAccount fields; a list Luma would not give is left out (the cache keeps what it had)."""
    fields = {"catalog_checked_at": timezone.now()}
    try:
        fields["concepts"] = client.concepts()
    except luma.LumaError as error:
        log.warning("could not read Luma's concepts: %s", error)
    try:
        fields["camera_motions"] = client.camera_motions()
    except luma.LumaError as error:
        log.info("no camera-motion list from Luma: %s", error)
    return fields


def ensure(account: LumaAccount) -> LumaAccount:
    """`account` with lists for the create form, right after a fresh start too.

    STYLE.md says the browser never causes a call to Luma; this is the deliberate, bounded exception: when the
    cache has never been filled (the refresh_catalog job has not run yet), the page reads the two lists itself,
    read-only, once, with a short timeout and no retries, and caches them. Anything Luma does not give in time
    is replaced, on this page only, by the built-in lists; the job fills the cache properly later.
    """
    if account.concepts or account.camera_motions:
        return account
    now = timezone.now()
    if account.catalog_checked_at is None or account.catalog_checked_at < now - ON_DEMAND_AGAIN:
        try:
            client = luma.client_from_settings()
        except luma.LumaNotConfigured:
            client = None
        if client is not None:
            client.timeout = (ON_DEMAND_SECONDS, ON_DEMAND_SECONDS)
            client.get_retries = 1
            with client:
                fields = read(client)
            LumaAccount.objects.filter(pk=account.pk).update(**fields)
            for name, value in fields.items():
                setattr(account, name, value)
    account.concepts = account.concepts or list(FALLBACK_CONCEPTS)
    account.camera_motions = account.camera_motions or list(FALLBACK_CAMERA_MOTIONS)
    return account
