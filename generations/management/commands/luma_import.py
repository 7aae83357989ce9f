"""Import an account's existing generations from Luma into the library, idempotently."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from generations import luma
from generations.models import Generation, GenerationEvent, Kind, State, kind_for_keyframes


def _row_for(remote: luma.Generation, owner) -> Generation:
    request = remote.request or {}
    keyframes = request.get("keyframes") or {}
    gen_type = request.get("generation_type") or remote.kind or "video"
    if gen_type == "image" or remote.kind == "image":
        kind = Kind.IMAGE
    elif gen_type == "upscale_video":
        kind = Kind.UPSCALE
    elif gen_type == "add_audio":
        kind = Kind.ADD_AUDIO
    else:
        kind = kind_for_keyframes(keyframes)
    frames = {}
    for name in ("frame0", "frame1"):
        frame = keyframes.get(name) or {}
        if frame.get("type") == "image":
            frames[f"{name}_url"] = frame.get("url") or ""
        elif frame.get("type") == "generation":
            frames[f"{name}_generation"] = Generation.objects.filter(luma_id=frame.get("id")).first()
    concepts = [c.get("key") if isinstance(c, dict) else c for c in request.get("concepts") or []]
    return Generation(
        owner=owner,
        kind=kind,
        prompt=request.get("prompt") or "",
        model=request.get("model") or remote.model or "",
        resolution=request.get("resolution") or "",
        duration=request.get("duration") or "",
        aspect_ratio=request.get("aspect_ratio") or "",
        loop=bool(request.get("loop")),
        concepts=[c for c in concepts if c],
        luma_id=remote.id,
        # Not pending: admission must never send an imported generation again.
        state=State.UNCONFIRMED,
        submitted_at=remote.created_at,
        created_at=remote.created_at or Generation._meta.get_field("created_at").default(),
        **frames,
    )


class Command(BaseCommand):
    help = "Pull the account's existing generations (Luma's list endpoint) into the library. Safe to repeat."

    def add_arguments(self, parser):
        parser.add_argument("--owner", help="username to own imported generations (default: nobody)")
        parser.add_argument("--limit", type=int, default=0, help="stop after this many (default: all)")

    def handle(self, *args, owner=None, limit=0, **options):
        user = None
        if owner:
            user = get_user_model().objects.filter(username=owner).first()
            if user is None:
                raise CommandError(f"No user named {owner!r}.")
        client = luma.client_from_settings()
        offset = seen = added = 0
        try:
            while True:
                page = client.list(limit=100, offset=offset)
                # Oldest first within what we import, so extends can link to what they extend.
                for remote in reversed(page.generations):
                    seen += 1
                    if remote.id and not Generation.objects.filter(luma_id=remote.id).exists():
                        with transaction.atomic():
                            row = _row_for(remote, user)
                            row.save()
                            row.apply_remote(remote, source=GenerationEvent.Source.IMPORT)
                        added += 1
                    if limit and seen >= limit:
                        break
                self.stdout.write(f"\rimported {added} new of {seen} seen", ending="")
                self.stdout.flush()
                offset += len(page.generations)
                if not page.has_more or not page.generations or (limit and seen >= limit):
                    break
        except luma.LumaError as error:
            raise CommandError(f"\nStopped after {seen} generations: {error}") from None
        self.stdout.write(f"\rimported {added} new of {seen} seen; done.")
