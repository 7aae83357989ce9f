"""The only functions django-q2 runs: submit, refresh, archive, delete, the periodic sweep and account upkeep.

Every task takes primary keys, is enqueued on commit, and is safe to run twice (django-q2 delivers at
least once): each says how in its docstring.
"""

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task, schedule

from . import admission, luma, providers
from .luma_agents import NO_DELETE, LumaUploadUnfinished
from .catalog import read as read_catalog
from .credits import record_balance
from .models import ArchiveState, Generation, GenerationEvent, LumaAccount, State

log = logging.getLogger("lumaweb.tasks")
Source = GenerationEvent.Source

MAX_ARCHIVE_ATTEMPTS = 8
# A lost create with no list to search it in (the Agents API): said plainly, and a person decides.
CANNOT_CONFIRM = ("Luma may have made and billed this; we could not confirm (its answer was lost, and this API has "
                  "no list to look in). It was not sent again.")
LIST_PAGE = 100
# Reconcile searches Luma's list back to the oldest doubtful create, at most this many pages.
RECONCILE_MAX_PAGES = 50
# Luma's clock and ours may differ; the search goes this much further back.
CLOCK_MARGIN = timedelta(minutes=5)
# A create we gave up on is still adopted if it shows up on Luma within this long.
ADOPT_WITHIN = timedelta(hours=24)
MAX_GETS_PER_SWEEP = 50
# A sweep stops calling Luma after this many seconds; its lease outlives any sweep.
SWEEP_BUDGET = 40
SWEEP_LEASE = timedelta(minutes=5)
# The follower looks at the next due poll at least this often (seconds), and its lease outlives a run by this much.
FOLLOW_TICK = 2.0
FOLLOW_MIN_WAIT = 0.5
FOLLOW_LEASE_SLACK = 60
CREDITS_EVERY = timedelta(minutes=5)
CREDITS_DEBOUNCE = timedelta(seconds=10)
CREDITS_READ = "Read the credit balance after a generation ended"  # the one-off Schedule of a booked read
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


def submit(pk: int) -> None:
    """Send one generation's create to Luma, at most once per row.

    The claim (a conditional UPDATE stamping submitted_at) happens before the request; a redelivered
    task finds the stamp and returns. If the answer is lost: with Dream Machine the row waits as unconfirmed
    and the sweep looks for it on Luma by its callback token; the Agents API has no list to look in, so the
    row says plainly that Luma may have made and billed it, and only a person may send it again.
    """
    row = Generation.objects.select_related("source", "frame0_generation", "frame1_generation").get(pk=pk)
    if not row.claim_submit():
        return
    if row.deleted_at:
        row.reject("Deleted before it was sent to Luma.")
        return
    adapter = providers.for_row(row)
    try:
        remote = adapter.create(row, before_send=row.about_to_send)
    except providers.NotSent:
        return  # the sweep gave it back to the queue while its inputs were uploading: another job sends it
    except luma.LumaRateLimited as error:
        admission.pause(error.retry_after, adapter.name)
        row.requeue(f"Luma is busy (429); waiting {error.retry_after:.0f} s, keeping our place in the queue.")
    except LumaUploadUnfinished as error:
        admission.pause(10, adapter.name)
        row.requeue(f"Not sent yet: {error}. Nothing was created at Luma; trying again shortly.")
    except luma.LumaConnectionError as error:
        admission.pause(10, adapter.name)
        row.requeue(f"Could not reach Luma ({error}); nothing was sent, trying again shortly.")
    except luma.LumaOutcomeUnknown as error:
        if adapter.can_list:
            row.mark_unconfirmed(f"Sent, but Luma's answer was lost ({error}); checking whether it was created.")
        else:
            row.mark_unconfirmed(f"Sent, but Luma's answer was lost ({error}).")
            row.fail(CANNOT_CONFIRM, Source.SUBMIT, recheck=False)
    except luma.LumaRejected as error:
        row.reject(error.detail or str(error))
    except luma.LumaError as error:
        # Bad key, no credit, unknown source, not configured: Luma made nothing, and resending won't help.
        row.reject(str(error))
    else:
        row.apply_remote(remote, source=Source.SUBMIT)
        enqueue("follow")


# --- following Luma -----------------------------------------------------------------------------


def refresh(pk: int) -> None:
    """Ask Luma for one generation and apply the answer. Read-only on Luma, so any repeat is harmless."""
    row = Generation.objects.get(pk=pk)
    if not row.luma_id or (row.is_terminal and not row.failed_locally):
        return
    _refresh_one(providers.for_row(row).client(), row, Source.POLL)


def refresh_any(pk: int) -> None:
    """Ask Luma about a generation even if we think it is finished (admin action). Read-only on Luma."""
    row = Generation.objects.get(pk=pk)
    if row.luma_id:
        _refresh_one(providers.for_row(row).client(), row, Source.ADMIN)


def confirm(pk: int, claimed_id: str = "") -> None:
    """A callback prompted us (Generation.nudge): read the truth from Luma and apply it. Read-only on Luma.

    A callback that came before we knew Luma's id names an id; it is adopted only if Luma's own answer for that
    id carries this row's callback token (Luma echoes request.callback_url), so a forged id binds nothing.
    """
    row = Generation.objects.get(pk=pk)
    if row.deleted_at or (row.is_terminal and not row.failed_locally):
        return
    client = providers.for_row(row).client()
    if row.luma_id:
        _refresh_one(client, row, Source.CHECK)
        return
    if not claimed_id:
        return
    try:
        remote = client.get(claimed_id)
    except luma.LumaError as error:
        log.info("could not check the id a callback named for generation %s: %s", pk, type(error).__name__)
        return
    if _token_of(remote) != row.callback_token:
        row.record(Source.CHECK, "a callback named a generation that is not ours; ignored")
        return
    row.apply_remote(remote, source=Source.CHECK)


def _refresh_one(client: luma.LumaClient, row: Generation, source: str) -> None:
    try:
        remote = client.get(row.luma_id)
    except luma.LumaNotFound:
        if row.state == State.FAILED:
            row.recheck_later()
        else:
            row.fail("Luma says it has no such generation (deleted on Luma?); we will check again a few times.",
                     source)
    except luma.LumaError as error:
        Generation.objects.filter(pk=row.pk).update(next_poll_at=timezone.now() + timedelta(minutes=1))
        log.info("%s: could not ask Luma about generation %s: %s", source, row.pk, error)
    else:
        if not row.apply_remote(remote, source=source) and row.state == State.FAILED and row.failed_locally:
            row.recheck_later()


def _token_of(remote: luma.Generation) -> str:
    url = (remote.callback_url or "").rstrip("/")
    return url.rsplit("/", 1)[-1] if "/webhooks/luma/" in url else ""


def stall_after() -> timedelta:
    return timedelta(seconds=settings.LUMA_STALL_SECONDS)


def prepare_after() -> timedelta:
    """How long a submit job may upload a row's inputs: past the job time-out (Q_TIMEOUT), it was killed."""
    return timedelta(seconds=settings.Q_TIMEOUT + 60)


def _scan_back(client: luma.LumaClient, since, deadline: float) -> tuple[dict[str, luma.Generation], bool]:
    """Luma's generations by callback token, newest first, back to `since` (Luma's clock, with a margin).

    Returns (found, complete): complete is False when the scan stopped early (page cap, time budget), so
    nobody may conclude from it that a create never reached Luma.
    """
    found: dict[str, luma.Generation] = {}
    for page in range(RECONCILE_MAX_PAGES):
        result = client.list(limit=LIST_PAGE, offset=page * LIST_PAGE)
        for remote in result.generations:
            token = _token_of(remote)
            if token:
                found.setdefault(token, remote)
        created = [remote.created_at for remote in result.generations if remote.created_at]
        if not result.has_more or not result.generations or (created and min(created) < since):
            return found, True
        if time.monotonic() > deadline:
            break
    return found, False


def reconcile(client: luma.LumaClient, now, deadline: float = float("inf")) -> None:
    """Find the creates whose answer was lost: Luma echoes each row's callback URL, whose token is unique.

    Luma's list is searched back to the oldest such row's submit time. A create whose outcome is unknown is
    never sent again: after the grace period with a complete search and no match, the row is failed locally
    (nothing billed as far as Luma's list shows), and it is still adopted if its generation shows up later.
    """
    ours = Generation.objects.filter(provider=client.provider)
    for row in ours.filter(state=State.SUBMITTING, preparing=False, submitted_at__lt=now - stall_after()):
        # Claimed long ago and never answered: the worker died around the request.
        row.mark_unconfirmed("The worker sending this create stopped; checking whether Luma received it.",
                             Source.SWEEP)
    for row in ours.filter(state=State.SUBMITTING, preparing=True, submitted_at__lt=now - prepare_after()):
        # Still uploading its inputs after the longest a job may run: that job is dead, and it sent nothing.
        row.requeue("The worker uploading this request's files stopped before sending it; nothing was sent to "
                    "Luma, so it waits for its turn again.", Source.SWEEP)
    if not providers.ADAPTERS[client.provider].can_list:
        # No list to search (Agents API): say so at once, and leave the decision to a person.
        for row in ours.filter(state=State.UNCONFIRMED):
            row.fail(CANNOT_CONFIRM, Source.SWEEP, recheck=False)
        return
    doubtful = list(
        ours.filter(state=State.UNCONFIRMED).filter(Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now))
    )
    given_up = list(
        ours.filter(state=State.FAILED, failed_locally=True, luma_id__isnull=True,
                    submitted_at__gte=now - ADOPT_WITHIN, next_poll_at__lte=now)
    )
    rows = doubtful + given_up
    if not rows:
        return
    since = min(row.submitted_at or now for row in rows) - CLOCK_MARGIN
    by_token, complete = _scan_back(client, since, deadline)
    grace = timedelta(seconds=settings.LUMA_RECONCILE_GRACE_SECONDS)
    for row in rows:
        remote = by_token.get(row.callback_token)
        if remote is not None:
            row.apply_remote(remote, source=Source.SWEEP)
        elif row.state == State.FAILED:
            row.recheck_later(now)
        elif not complete or (row.submitted_at and row.submitted_at > now - grace):
            Generation.objects.filter(pk=row.pk).update(next_poll_at=now + timedelta(seconds=20))
        else:
            row.fail("Luma has no generation from this request, so it was not sent again (that could bill "
                     "twice). If it shows up on Luma later, it will appear here.", Source.SWEEP)


def poll_due(client: luma.LumaClient, now, deadline: float = float("inf"), source: str = Source.SWEEP) -> None:
    """Refresh in-flight generations with no recent news (and locally failed ones due a re-check).

    One list call covers many at once; when the list fails, each is read by id instead.
    """
    due = list(
        Generation.objects.filter(provider=client.provider, luma_id__isnull=False, next_poll_at__lte=now)
        .filter(Q(state__in=[State.QUEUED, State.DREAMING]) | Q(state=State.FAILED, failed_locally=True))
        .order_by("next_poll_at")[: LIST_PAGE * 2]
    )
    if not due:
        return
    remaining = due
    if len(due) > 1 and providers.ADAPTERS[client.provider].can_list:
        try:
            recent = {remote.id: remote for remote in client.list(limit=LIST_PAGE).generations}
        except luma.LumaError as error:
            log.warning("Luma's list failed (%s); reading %d generation(s) one by one", type(error).__name__,
                        min(len(due), MAX_GETS_PER_SWEEP))
            recent = {}
        remaining = []
        for row in due:
            if row.luma_id in recent:
                row.apply_remote(recent[row.luma_id], source=source)
            else:
                remaining.append(row)
    for row in remaining[:MAX_GETS_PER_SWEEP]:
        if time.monotonic() > deadline:
            break
        _refresh_one(client, row, source)


def _followed():
    return Generation.objects.filter(state__in=[State.QUEUED, State.DREAMING], luma_id__isnull=False)


def follow() -> None:
    """Poll in-flight generations as they fall due, within seconds rather than at the next minute's sweep, for
    as long as any are in flight; then it ends, and the next submit or sweep starts it again.

    One follower at a time (a lease). Each run lasts about LUMA_FOLLOW_SECONDS, then queues its successor, so no
    task outlives the cluster's timeout. Read-only on Luma, so a duplicate run is harmless.
    """
    seconds = settings.LUMA_FOLLOW_SECONDS
    lease = LumaAccount.take_lease("follow", timezone.now(), seconds + FOLLOW_LEASE_SLACK)
    if lease is None:
        return
    again = False
    try:
        clients = [adapter.client() for adapter in providers.configured()]
        end = time.monotonic() + seconds
        while _followed().exists():
            for client in clients:
                poll_due(client, timezone.now(), source=Source.POLL)
            soonest = _followed().exclude(next_poll_at=None).order_by("next_poll_at").values_list(
                "next_poll_at", flat=True).first()
            wait = (soonest - timezone.now()).total_seconds() if soonest else FOLLOW_TICK
            wait = min(max(wait, FOLLOW_MIN_WAIT), FOLLOW_TICK)
            if time.monotonic() + wait > end:
                again = seconds > 0
                break
            time.sleep(wait)
    except luma.LumaNotConfigured:
        return
    finally:
        LumaAccount.release_lease("follow", lease)
    if again:
        enqueue("follow")


def restart_archives(now) -> None:
    """Archives that never started, failed (with backoff), or stalled because a worker died."""
    candidates = Generation.objects.filter(state=State.COMPLETED, deleted_at__isnull=True).filter(
        Q(archive_state=ArchiveState.WAITING, archive_updated_at__isnull=True, completed_at__lt=now - timedelta(seconds=30))
        | Q(archive_state=ArchiveState.WAITING, archive_updated_at__lt=now - stall_after())
        | Q(archive_state=ArchiveState.DOWNLOADING, archive_updated_at__lt=now - stall_after())
        | Q(archive_state=ArchiveState.FAILED, archive_attempts__lt=MAX_ARCHIVE_ATTEMPTS)
    )
    for row in candidates.only("pk", "archive_state", "archive_attempts", "archive_updated_at")[:200]:
        if row.archive_state == ArchiveState.FAILED:
            wait = timedelta(seconds=30 * 2 ** min(row.archive_attempts, 8))
            if row.archive_updated_at and row.archive_updated_at > now - wait:
                continue
        enqueue("archive", row.pk)


def resubmit_lost(now) -> None:
    """Admitted rows whose submit task vanished before it claimed the row: queue it again (the claim dedups)."""
    lost = Generation.objects.filter(state=State.SUBMITTING, submitted_at__isnull=True, next_poll_at__lt=now)
    for pk in lost.values_list("pk", flat=True)[:200]:
        Generation.objects.filter(pk=pk).update(next_poll_at=now + stall_after())
        enqueue("submit", pk)


def sweep() -> None:
    """Repair whatever a lost task or a lost callback left behind. Runs every minute; each step is idempotent.

    One sweep at a time: a lease on the account row keeps a slow sweep (Luma timing out) from overlapping the
    next one, and the calls to Luma stop after SWEEP_BUDGET seconds, leaving the rest to the next sweep.
    """
    now = timezone.now()
    lease = LumaAccount.take_lease("sweep", now, SWEEP_LEASE.total_seconds())
    if lease is None:
        log.info("sweep skipped: the previous sweep is still running")
        return
    try:
        _sweep(now, deadline=time.monotonic() + SWEEP_BUDGET)
    finally:
        LumaAccount.release_lease("sweep", lease)


def _sweep(now, deadline: float) -> None:
    admit()
    resubmit_lost(now)
    restart_archives(now)
    for pk in Generation.objects.filter(
        deleted_at__lt=now - timedelta(minutes=1), luma_deleted_at__isnull=True
    ).values_list("pk", flat=True)[:50]:
        enqueue("delete_generation", pk)
    for adapter in providers.configured():
        client = adapter.client()
        for step in (reconcile, poll_due):
            try:
                step(client, now, deadline)
            except luma.LumaError as error:
                log.warning("sweep step %s could not reach %s: %s", step.__name__, adapter.label, error)
    account = LumaAccount.get()
    if (account.follow_lease_until is None or account.follow_lease_until < now) and _followed().exists():
        enqueue("follow")
    if providers.DREAM_MACHINE.configured() and (
        not account.credits_checked_at or account.credits_checked_at < now - CREDITS_EVERY
        or _ended_since(account.credits_checked_at)  # an end the last read may have missed
    ):
        enqueue("refresh_credits")
    # Camera motions and concepts are Dream Machine's lists: with only the Agents API there is nothing to read.
    if providers.DREAM_MACHINE.configured() and (
            not account.catalog_checked_at or account.catalog_checked_at < now - CATALOG_EVERY):
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
    for extra in row.extra_files or []:
        if extra.get("file") and extra["file"] != row.archive_file.name:
            row.archive_file.storage.delete(extra["file"])
    Generation.objects.filter(pk=pk).update(archive_file="", poster="", extra_files=[])
    if row.luma_deletes:
        try:
            providers.for_row(row).client().delete(row.luma_id)
        except luma.LumaNotFound:
            pass
        except luma.LumaError as error:
            row.record(Source.DELETE, f"could not delete on Luma yet ({error}); the sweep will retry")
            raise
    Generation.objects.filter(pk=pk).update(luma_deleted_at=timezone.now())
    if row.luma_id and not row.luma_deletes:
        row.record(Source.DELETE, f"files removed. {NO_DELETE}")
    else:
        row.record(Source.DELETE, "files removed and deleted on Luma" if row.luma_id else "files removed")


def refresh_credits(booked: bool = False) -> None:
    """Cache the team's credit balance and keep it as a snapshot (credits.py). Read-only on Luma.

    Queued whenever a generation ends, so the badge counts it soon after. Reads are at least CREDITS_DEBOUNCE
    apart: a read begun in that window is fresh enough if nothing ended since it began. If something did, the
    next read is booked for the end of the window (a conditional update of credits_checked_at, so one task of a
    burst books it and the others find it booked) as a one-off Schedule, which runs this with booked=True: an end
    is never left uncounted until the 5-minute read, and no worker waits. The sweep reads too whenever a
    generation ended after the last read began."""
    account = LumaAccount.get()
    last = account.credits_checked_at
    if not booked and last and last > timezone.now() - CREDITS_DEBOUNCE:
        if _ended_since(last):
            _book_credits_read(account, last)
        return
    _read_credits(account)


def _book_credits_read(account: LumaAccount, last) -> None:
    due = last + CREDITS_DEBOUNCE
    if not LumaAccount.objects.filter(pk=account.pk, credits_checked_at=last).update(credits_checked_at=due):
        return  # another task of the burst booked it
    if Schedule.objects.filter(name=CREDITS_READ).exists():
        return  # a booked read not yet run (the cluster was busy): due already, it reads after this end
    schedule("generations.tasks.refresh_credits", booked=True, name=CREDITS_READ, schedule_type=Schedule.ONCE,
             repeats=-1, next_run=due)


def _ended_since(moment) -> bool:
    """Whether a generation ended at or after `moment` (one older than a day ending now is left to the 5-minute
    read: the bound keeps this on the library's state index)."""
    recent = Generation.objects.filter(state__in=[State.COMPLETED, State.FAILED],
                                       created_at__gte=moment - timedelta(days=1))
    return recent.filter(Q(completed_at__gte=moment) | Q(failed_at__gte=moment)).exists()


def _read_credits(account: LumaAccount) -> None:
    # Stamped with when the read began: a generation ending while Luma answers is after it, so it is read again.
    began = timezone.now()
    LumaAccount.objects.filter(pk=account.pk).update(credits_checked_at=began)
    try:
        balance = luma.client_from_settings().credits()
    except luma.LumaError as error:
        LumaAccount.objects.filter(pk=account.pk).update(credits_error=str(error)[:300])
        return
    LumaAccount.objects.filter(pk=account.pk).update(credit_balance=balance, credits_error="")
    record_balance(balance)  # the history the "me" page reconciles with lumaweb's estimates


def forget_uploads() -> None:
    """Delete uploads no generation in the library uses any more (hourly Schedule). Repeats find nothing to do."""
    from .files import forget_unneeded_uploads

    gone = forget_unneeded_uploads()
    if gone:
        log.info("deleted %d upload(s) no generation uses", gone)


def refresh_catalog() -> None:
    """Cache the camera motions and concepts the create form offers. Read-only on Luma."""
    fields = read_catalog(luma.client_from_settings())
    LumaAccount.get()
    LumaAccount.objects.filter(pk=1).update(**fields)


def notify_ended(pk: int) -> None:
    """Tell the owner of generation `pk` that it finished or failed (in the page, and by e-mail if they opted in).
    Idempotent: notify.generation_ended says each outcome once per generation, however often this runs."""
    from .notify import generation_ended

    generation_ended(pk)
