"""The only functions django-q2 runs: submit, refresh, archive, delete, the periodic sweep and account upkeep.

Every task takes primary keys, is enqueued on commit, and is safe to run twice (django-q2 delivers at
least once): each says how in its docstring.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_q.tasks import async_task

from . import admission, luma
from .models import ArchiveState, Generation, GenerationEvent, Kind, LumaAccount, State

log = logging.getLogger("lumaweb.tasks")
Source = GenerationEvent.Source

MAX_ARCHIVE_ATTEMPTS = 8
MAX_SUBMIT_ATTEMPTS = 2
LIST_PAGE = 100
RECONCILE_PAGES = 3
MAX_GETS_PER_SWEEP = 50
CREDITS_EVERY = timedelta(minutes=5)
CATALOG_EVERY = timedelta(hours=6)


def enqueue(name: str, *args) -> None:
    """Queue generations.tasks.<name>(*args) once the current transaction commits (never for a rolled-back row)."""
    transaction.on_commit(lambda: async_task(f"generations.tasks.{name}", *args, group=name))


# --- submitting ---------------------------------------------------------------------------------


def admit() -> None:
    """Admit pending rows up to the limits and queue their submit. Twice is harmless: admission is a
    conditional update per row, under a lock."""
    for pk in admission.admit():
        enqueue("submit", pk)


def _send_create(client: luma.LumaClient, row: Generation) -> luma.Generation:
    body = row.luma_request()
    if row.kind == Kind.IMAGE:
        return client.create_image(**body)
    if row.kind == Kind.UPSCALE:
        return client.upscale(row.source.luma_id, **body)
    if row.kind == Kind.ADD_AUDIO:
        return client.add_audio(row.source.luma_id, **body)
    return client.create_video(**body)


def submit(pk: int) -> None:
    """Send one generation's create to Luma, at most once per row.

    The claim (a conditional UPDATE stamping submitted_at) happens before the request; a redelivered
    task finds the stamp and returns. If the answer is lost the row waits as unconfirmed and the sweep
    looks for it on Luma by its callback token instead of sending again.
    """
    row = Generation.objects.select_related("source", "frame0_generation", "frame1_generation").get(pk=pk)
    if not row.claim_submit():
        return
    if row.deleted_at:
        row.reject("Deleted before it was sent to Luma.")
        return
    try:
        client = luma.client_from_settings()
        remote = _send_create(client, row)
    except luma.LumaRateLimited as error:
        admission.pause(error.retry_after)
        row.requeue(f"Luma is busy (429); waiting {error.retry_after:.0f} s, keeping our place in the queue.")
    except luma.LumaConnectionError as error:
        admission.pause(10)
        row.requeue(f"Could not reach Luma ({error}); nothing was sent, trying again shortly.")
    except luma.LumaOutcomeUnknown as error:
        row.mark_unconfirmed(f"Sent, but Luma's answer was lost ({error}); checking whether it was created.")
    except luma.LumaRejected as error:
        row.reject(error.detail or str(error))
    except luma.LumaError as error:
        # Bad key, no credit, unknown source, not configured: Luma made nothing, and resending won't help.
        row.reject(str(error))
    else:
        row.apply_remote(remote, source=Source.SUBMIT)


# --- following Luma -----------------------------------------------------------------------------


def refresh(pk: int) -> None:
    """Ask Luma for one generation and apply the answer. Read-only on Luma, so any repeat is harmless."""
    row = Generation.objects.get(pk=pk)
    if not row.luma_id or row.is_terminal:
        return
    _refresh_one(luma.client_from_settings(), row, Source.POLL)


def refresh_any(pk: int) -> None:
    """Ask Luma about a generation even if we think it is finished (admin action). Read-only on Luma."""
    row = Generation.objects.get(pk=pk)
    if row.luma_id:
        _refresh_one(luma.client_from_settings(), row, Source.ADMIN)


def _refresh_one(client: luma.LumaClient, row: Generation, source: str) -> None:
    try:
        remote = client.get(row.luma_id)
    except luma.LumaNotFound:
        row.fail("Luma no longer has this generation (deleted on Luma?).", source)
    except luma.LumaError as error:
        Generation.objects.filter(pk=row.pk).update(next_poll_at=timezone.now() + timedelta(minutes=1))
        row.record(source, f"{source}: could not ask Luma ({error})")
    else:
        row.apply_remote(remote, source=source)


def _recent_remote(client: luma.LumaClient, pages: int) -> list[luma.Generation]:
    """Luma's newest generations, one list call per page of 100."""
    found: list[luma.Generation] = []
    for page in range(pages):
        result = client.list(limit=LIST_PAGE, offset=page * LIST_PAGE)
        found.extend(result.generations)
        if not result.has_more:
            break
    return found


def _token_of(remote: luma.Generation) -> str:
    url = (remote.callback_url or "").rstrip("/")
    return url.rsplit("/", 1)[-1] if "/webhooks/luma/" in url else ""


def stall_after() -> timedelta:
    return timedelta(seconds=settings.LUMA_STALL_SECONDS)


def reconcile(client: luma.LumaClient, now) -> None:
    """Find the creates whose answer was lost: Luma echoes each row's callback URL, whose token is unique.

    Only after the grace period with no match is a row sent again (once) or failed, so a lost answer
    never bills twice.
    """
    lost_before = now - stall_after()
    doubtful = list(
        Generation.objects.filter(
            Q(state=State.UNCONFIRMED, next_poll_at__isnull=True)
            | Q(state=State.UNCONFIRMED, next_poll_at__lte=now)
            # Claimed long ago and never answered: the worker died around the request.
            | Q(state=State.SUBMITTING, submitted_at__lt=lost_before)
        )
    )
    if not doubtful:
        return
    by_token = {_token_of(remote): remote for remote in _recent_remote(client, RECONCILE_PAGES)}
    grace = timedelta(seconds=settings.LUMA_RECONCILE_GRACE_SECONDS)
    for row in doubtful:
        remote = by_token.get(row.callback_token)
        if remote is not None:
            row.apply_remote(remote, source=Source.SWEEP)
        elif row.submitted_at and row.submitted_at > now - grace:
            Generation.objects.filter(pk=row.pk).update(next_poll_at=now + timedelta(seconds=20))
        elif 0 < row.submit_attempts < MAX_SUBMIT_ATTEMPTS:
            row.requeue("Luma has no trace of our create after the grace period; sending it again.", Source.SWEEP)
        else:
            row.fail("Luma never confirmed this request; we stopped rather than risk paying twice.", Source.SWEEP)


def poll_due(client: luma.LumaClient, now) -> None:
    """Refresh in-flight generations with no recent news; one list call covers many at once."""
    due = list(
        Generation.objects.filter(state__in=[State.QUEUED, State.DREAMING], luma_id__isnull=False)
        .filter(next_poll_at__lte=now)
        .order_by("next_poll_at")[: LIST_PAGE * 2]
    )
    if not due:
        return
    remaining = due
    if len(due) > 1:
        recent = {remote.id: remote for remote in _recent_remote(client, 1)}
        remaining = []
        for row in due:
            if row.luma_id in recent:
                row.apply_remote(recent[row.luma_id], source=Source.SWEEP)
            else:
                remaining.append(row)
    for row in remaining[:MAX_GETS_PER_SWEEP]:
        _refresh_one(client, row, Source.SWEEP)


def restart_archives(now) -> None:
    """Archives that never started, failed (with backoff), or stalled because a worker died."""
    candidates = Generation.objects.filter(state=State.COMPLETED, deleted_at__isnull=True).filter(
        Q(archive_state=ArchiveState.WAITING, archive_updated_at__isnull=True, completed_at__lt=now - timedelta(seconds=30))
        | Q(archive_state=ArchiveState.WAITING, archive_updated_at__lt=now - stall_after())
        | Q(archive_state=ArchiveState.DOWNLOADING, archive_updated_at__lt=now - stall_after())
        | Q(archive_state=ArchiveState.FAILED, archive_attempts__lt=MAX_ARCHIVE_ATTEMPTS)
    )
    for row in candidates.only("pk", "archive_state", "archive_attempts", "archive_updated_at"):
        if row.archive_state == ArchiveState.FAILED:
            wait = timedelta(seconds=30 * 2 ** min(row.archive_attempts, 8))
            if row.archive_updated_at and row.archive_updated_at > now - wait:
                continue
        enqueue("archive", row.pk)


def resubmit_lost(now) -> None:
    """Admitted rows whose submit task vanished before it claimed the row: queue it again (the claim dedups)."""
    lost = Generation.objects.filter(state=State.SUBMITTING, submitted_at__isnull=True, next_poll_at__lt=now)
    for pk in lost.values_list("pk", flat=True):
        Generation.objects.filter(pk=pk).update(next_poll_at=now + stall_after())
        enqueue("submit", pk)


def sweep() -> None:
    """Repair whatever a lost task or a lost callback left behind. Runs every minute; each step is idempotent."""
    now = timezone.now()
    admit()
    resubmit_lost(now)
    restart_archives(now)
    for pk in Generation.objects.filter(
        deleted_at__lt=now - timedelta(minutes=1), luma_deleted_at__isnull=True
    ).values_list("pk", flat=True)[:50]:
        enqueue("delete_generation", pk)
    try:
        client = luma.client_from_settings()
    except luma.LumaNotConfigured:
        return
    for step in (reconcile, poll_due):
        try:
            step(client, now)
        except luma.LumaError as error:
            log.warning("sweep step %s could not reach Luma: %s", step.__name__, error)
    account = LumaAccount.get()
    if not account.credits_checked_at or account.credits_checked_at < now - CREDITS_EVERY:
        enqueue("refresh_credits")
    if not account.catalog_checked_at or account.catalog_checked_at < now - CATALOG_EVERY:
        enqueue("refresh_catalog")


# --- files and account --------------------------------------------------------------------------


def archive(pk: int) -> None:
    """Download a completed generation's asset into our storage. Claimed by a conditional update, so a
    redelivered task returns unless the first one stalled; a partial file resumes with Range."""
    from .archive import archive_generation

    archive_generation(pk)


def delete_generation(pk: int) -> None:
    """Remove our files and delete the generation on Luma. Repeats are harmless: files already gone are
    skipped, and a 404 from Luma means it is already deleted."""
    row = Generation.objects.get(pk=pk)
    if not row.deleted_at or row.luma_deleted_at:
        return
    for field in (row.archive_file, row.poster):
        if field:
            field.delete(save=False)
    Generation.objects.filter(pk=pk).update(archive_file="", poster="")
    if row.luma_id:
        try:
            luma.client_from_settings().delete(row.luma_id)
        except luma.LumaNotFound:
            pass
        except luma.LumaError as error:
            row.record(Source.DELETE, f"could not delete on Luma yet ({error}); the sweep will retry")
            raise
    Generation.objects.filter(pk=pk).update(luma_deleted_at=timezone.now())
    row.record(Source.DELETE, "files removed and deleted on Luma" if row.luma_id else "files removed")


def refresh_credits() -> None:
    """Cache the team's credit balance. Read-only on Luma."""
    account = LumaAccount.get()
    try:
        balance = luma.client_from_settings().credits()
    except luma.LumaError as error:
        LumaAccount.objects.filter(pk=account.pk).update(credits_error=str(error)[:300], credits_checked_at=timezone.now())
        return
    LumaAccount.objects.filter(pk=account.pk).update(
        credit_balance=balance, credits_error="", credits_checked_at=timezone.now()
    )


def refresh_catalog() -> None:
    """Cache the camera motions and concepts the create form offers. Read-only on Luma."""
    client = luma.client_from_settings()
    fields = {"catalog_checked_at": timezone.now()}
    try:
        fields["concepts"] = client.concepts()
    except luma.LumaError as error:
        log.warning("could not read Luma's concepts: %s", error)
    try:
        fields["camera_motions"] = client.camera_motions()
    except luma.LumaError as error:
        log.info("no camera-motion list from Luma: %s", error)
    LumaAccount.get()
    LumaAccount.objects.filter(pk=1).update(**fields)
