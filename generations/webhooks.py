"""The callback endpoint Luma POSTs generation updates to.

Luma does not sign callbacks, and the token in the URL is only as secret as every log and proxy that saw it. So a
callback decides nothing final: it may move a card between "queued" and "dreaming", and anything else (completed,
failed, asset URLs, Luma's id before the create's answer) only prompts a confirming read of Luma (`nudge`), at most
one per generation every few seconds. A forged callback can at most make us look sooner.
"""

import json
import logging

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .models import Generation, GenerationEvent, State

log = logging.getLogger("lumaweb.webhook")

MAX_BODY_BYTES = 256 * 1024
PROGRESS = (State.QUEUED, State.DREAMING)
# What a callback needs to know about its row (a narrow read: callbacks come in bursts).
CALLBACK_FIELDS = ("luma_id", "state", "deleted_at", "failed_locally", "submitted_at", "kind", "model")


def _refuse(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _parse(body: bytes):
    """The JSON object in body, or None. Deeply nested input is refused, not a RecursionError."""
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None


@csrf_exempt
@require_POST
def luma_callback(request: HttpRequest, token: str) -> HttpResponse:
    """Take a callback in a few queries, with no call to Luma and no download: repeats and reordering are harmless."""
    try:
        # get(), not first(): no ORDER BY, so the unique index answers even before the planner has statistics.
        generation = Generation.objects.only(*CALLBACK_FIELDS).get(callback_token=token)
    except Generation.DoesNotExist:
        raise Http404("Unknown callback token") from None
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if not declared.isdigit() or int(declared) > MAX_BODY_BYTES:
        return _refuse(413, f"Callback bodies are limited to {MAX_BODY_BYTES} bytes")
    body = request.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        return _refuse(413, f"Callback bodies are limited to {MAX_BODY_BYTES} bytes")
    data = _parse(body)
    if data is None:
        return _refuse(400, "The body is not JSON")
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
        return _refuse(400, "The body is not a generation object with an id")
    claimed_id, state = data["id"][:64], data.get("state")
    if generation.luma_id and claimed_id != generation.luma_id:
        log.warning("callback for generation %s carried another id", generation.pk)
        return _refuse(400, "The body's id does not belong to this callback URL")
    if generation.deleted_at:
        return JsonResponse({"ok": True, "ignored": "deleted"})
    if state in PROGRESS and generation.luma_id and not generation.is_terminal:
        generation.apply_progress(state, source=GenerationEvent.Source.WEBHOOK)
        return JsonResponse({"ok": True})
    # 200 either way: Luma retries anything else, and a repeat would only be rate-limited here.
    return JsonResponse({"ok": True, "checking": generation.nudge(claimed_id)})
