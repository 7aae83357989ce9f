"""Admin for generations: filters, prompt search, events inline, raw JSON read-only, and repair actions.

History stays as it happened: a generation sent to Luma is read-only here, rows are never added or hard-deleted
here (the dashboard's form and the "Delete (files and on Luma)" action are the ways in and out), and events
cannot be edited or deleted.
"""

import json
from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import Q
from django.utils import timezone
from django.utils.html import format_html

from . import tasks
from .budgets import DollarsField
from .models import ArchiveState, Favourite, Generation, GenerationEvent, KeyframeImage, LumaAccount, Profile, State


def was_sent(generation: Generation) -> bool:
    """Whether the request may have reached Luma: from then on it records what Luma was asked."""
    return bool(generation.submitted_at or generation.luma_id or generation.state != State.PENDING)


class GenerationEventInline(admin.TabularInline):
    model = GenerationEvent
    fields = ("created_at", "source", "state", "summary")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("created_at", "id")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Generation)
class GenerationAdmin(admin.ModelAdmin):
    class Media:
        css = {"all": ["generations/admin.css"]}  # a file, not a style attribute: the CSP allows no inline styles

    list_display = ("id", "short_prompt", "kind", "model", "state", "archive_state", "owner", "created_at", "deleted")
    list_filter = ("provider", "state", "kind", "model", "archive_state", "owner", ("deleted_at", admin.EmptyFieldListFilter))
    search_fields = ("prompt", "luma_id")
    list_select_related = ("owner",)
    date_hierarchy = "created_at"
    inlines = [GenerationEventInline]
    actions = ["refresh_from_luma", "retry_archive", "delete_on_luma"]
    readonly_fields = (
        "provider", "failed_locally", "extra_files", "luma_id", "state", "reason", "callback_url", "luma_created_at", "luma_model", "video_url", "image_url",
        "created_at", "submitted_at", "queued_at", "dreaming_at", "completed_at", "failed_at", "last_news_at",
        "next_poll_at", "submit_attempts", "archive_state", "archive_file", "poster", "archive_size",
        "archive_received", "sha256", "archive_attempts", "archive_error", "deleted_at", "luma_deleted_at",
        "raw_json", "price_cents",
    )
    exclude = ("raw", "client_token", "progress_video_url", "archive_updated_at", "polls_without_news", "nudged_at",
               "archive_claim")
    raw_id_fields = ("frame0_generation", "frame1_generation", "source", "owner")

    def has_add_permission(self, request):
        return False  # a row made here would skip the form's checks; the changelist links to the dashboard

    def has_change_permission(self, request, obj=None):
        # A sent generation is shown read-only (Django's view page); a POST to it is refused with 403.
        return super().has_change_permission(request, obj) and not (obj is not None and was_sent(obj))

    def has_delete_permission(self, request, obj=None):
        return False  # "Delete (files and on Luma)" hides the row and deletes it on Luma; a hard delete loses both

    def save_model(self, request, obj, form, change):
        """Write only what was edited, and only while the row is still unsent: admission may have sent it
        since the page was opened, and Luma was then asked what the row said at that moment."""
        before = Generation.objects.get(pk=obj.pk)
        columns = {name: Generation._meta.get_field(name).attname for name in form.changed_data}
        # The form also reports an unchanged empty JSON list as changed.
        changed = {name: column for name, column in columns.items() if getattr(obj, column) != getattr(before, column)}
        if not changed:
            return
        unsent = Generation.objects.filter(pk=obj.pk, state=State.PENDING, submitted_at__isnull=True).filter(
            Q(luma_id__isnull=True) | Q(luma_id="")
        )
        update = {column: getattr(obj, column) for column in changed.values()}
        if changed.keys() & {"kind", "model", "resolution", "duration", "options"}:
            update["price_cents"] = obj.estimated_price()  # what budgets count follows what will be asked for
        if unsent.update(**update):
            obj.record(GenerationEvent.Source.ADMIN,
                       f"edited in the admin by {request.user.get_username()}: {', '.join(changed)}")
        else:
            self.message_user(request, f"#{obj.pk} was sent to Luma meanwhile, so nothing was changed.",
                              messages.WARNING)

    @admin.display(description="prompt")
    def short_prompt(self, obj: Generation) -> str:
        return obj.prompt[:60] + ("…" if len(obj.prompt) > 60 else "")

    @admin.display(boolean=True)
    def deleted(self, obj: Generation) -> bool:
        return obj.deleted_at is not None

    @admin.display(description="Raw Luma JSON")
    def raw_json(self, obj: Generation) -> str:
        return format_html("<pre class='raw-json'>{}</pre>", json.dumps(obj.raw, indent=2) if obj.raw else "—")

    @admin.action(description="Refresh from Luma")
    def refresh_from_luma(self, request, queryset):
        rows = queryset.exclude(luma_id__isnull=True).exclude(state__in=[State.FAILED, State.REJECTED])
        for pk in rows.values_list("pk", flat=True):
            Generation.objects.filter(pk=pk).update(next_poll_at=None)
            tasks.enqueue("refresh_any", pk)
        self.message_user(request, f"Asked Luma about {rows.count()} generation(s).", messages.SUCCESS)

    @admin.action(description="Retry archive")
    def retry_archive(self, request, queryset):
        """Archive again from scratch. A download that is still making progress is left to finish: its run owns
        the row, and taking it over would only throw its bytes away (a stalled one is taken over)."""
        stalled = timezone.now() - timedelta(seconds=settings.LUMA_STALL_SECONDS)
        rows = queryset.filter(state=State.COMPLETED, deleted_at__isnull=True).exclude(archive_state=ArchiveState.DONE)
        running = rows.filter(archive_state=ArchiveState.DOWNLOADING, archive_updated_at__gte=stalled)
        busy = running.count()
        rows = rows.exclude(pk__in=running.values("pk"))
        pks = list(rows.values_list("pk", flat=True))
        count = Generation.objects.filter(pk__in=pks).update(archive_state=ArchiveState.FAILED, archive_attempts=0,
                                                             archive_updated_at=None)
        for pk in pks:
            tasks.enqueue("archive", pk)
        note = f" {busy} still downloading, left to finish." if busy else ""
        self.message_user(request, f"Archiving {count} generation(s) again.{note}", messages.SUCCESS)

    @admin.action(description="Delete (files, and on Luma where it has a delete)")
    def delete_on_luma(self, request, queryset):
        rows = list(queryset.filter(deleted_at__isnull=True))
        for row in rows:
            row.mark_deleted(request.user)
        kept = sum(1 for row in rows if row.luma_id and not row.luma_deletes)
        self.message_user(request, f"Deleting {len(rows)} generation(s)." + (
            f" Luma keeps its own copy of {kept} made through its Agents API, which has no delete." if kept else ""),
            messages.SUCCESS)


@admin.register(GenerationEvent)
class GenerationEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "generation", "source", "state", "summary")
    list_filter = ("source", "state")
    search_fields = ("summary",)
    list_select_related = ("generation",)

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(KeyframeImage)
class KeyframeImageAdmin(admin.ModelAdmin):
    list_display = ("id", "file", "media_type", "width", "height", "duration", "size", "uploaded_by", "created_at")

    # Uploads come only through the create form, which re-encodes them; a file put here would be served as is.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class LumaAccountForm(forms.ModelForm):
    team_budget_cents = DollarsField(label="Team budget a month (US dollars)", help_text="Empty: no team budget.")

    class Meta:
        model = LumaAccount
        fields = ("team_budget_cents", "budget_policy")


@admin.register(LumaAccount)
class LumaAccountAdmin(admin.ModelAdmin):
    """The team's budget and policy are set here (or on /settings/budgets/); the rest is what Luma told us."""

    form = LumaAccountForm
    list_display = ("id", "credit_balance", "credits_checked_at", "paused_until", "team_budget", "budget_policy")
    fields = ("team_budget_cents", "budget_policy", "credit_balance", "credits_checked_at", "paused_until",
              "agents_paused_until")
    readonly_fields = ("credit_balance", "credits_checked_at", "paused_until", "agents_paused_until")

    @admin.display(description="team budget")
    def team_budget(self, obj: LumaAccount) -> str:
        return "—" if obj.team_budget_cents is None else f"${obj.team_budget_cents / 100:,.2f}"


class ProfileForm(forms.ModelForm):
    monthly_budget_cents = DollarsField(label="Budget a month (US dollars)", help_text="Empty: no personal budget.")

    class Meta:
        model = Profile
        fields = ("monthly_budget_cents", "notify_browser", "notify_email")


class ProfileInline(admin.StackedInline):
    model = Profile
    form = ProfileForm
    can_delete = False
    verbose_name_plural = "Budget and notifications"


User = get_user_model()
if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class TeamUserAdmin(UserAdmin):
    """Django's user admin with each person's budget (in dollars) and notification choices; roles are groups."""

    inlines = [*UserAdmin.inlines, ProfileInline]


admin.site.register(Favourite)
admin.site.site_header = "lumaweb admin"
