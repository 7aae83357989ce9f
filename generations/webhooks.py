"""The callback endpoint Luma POSTs generation updates to; the token in the URL is the only credential."""

import json
import logging

from django.db import IntegrityError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .luma import Generation as RemoteGeneration
from .models import Generation, GenerationEvent

log = logging.getLogger("lumaweb.webhook")

MAX_BODY_BYTES = 256 * 1024


def _refuse(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


@csrf_exempt
@require_POST
def luma_callback(request: HttpRequest, token: str) -> HttpResponse:
    """Apply a callback at once (a few queries, no download, no call to Luma): repeats and reordering are harmless."""
    try:
        # get(), not first(): no ORDER BY, so the unique index answers even before the planner has statistics.
        generation = Generation.objects.get(callback_token=token)
    except Generation.DoesNotExist:
        raise Http404("Unknown callback token") from None
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if not declared.isdigit() or int(declared) > MAX_BODY_BYTES:
        return _refuse(413, f"Callback bodies are limited to {MAX_BODY_BYTES} bytes")
    body = request.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        return _refuse(413, f"Callback bodies are limited to {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return _refuse(400, "The body is not JSON")
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
        return _refuse(400, "The body is not a generation object with an id")
    remote = RemoteGeneration.from_json(data)
    if generation.luma_id and remote.id != generation.luma_id:
        log.warning("callback for generation %s carried another id", generation.pk)
        return _refuse(400, "The body's id does not belong to this callback URL")
    if generation.deleted_at:
        return JsonResponse({"ok": True, "ignored": "deleted"})
    try:
        generation.apply_remote(remote, source=GenerationEvent.Source.WEBHOOK)
    except IntegrityError:
        return _refuse(400, "The body's id belongs to another generation")
    return JsonResponse({"ok": True})
