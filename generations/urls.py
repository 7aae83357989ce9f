"""URL routes of the generations app."""

from django.urls import path

from . import files, views, views_library, views_workspace, webhooks

from . import export, share  # share links and ZIP exports (issue 10)
from . import presets, views_team  # usage, budgets, approvals, presets (issue 10)

app_name = "generations"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    # Luma calls this without a login; the per-generation token is the credential.
    path("webhooks/luma/<str:token>/", webhooks.luma_callback, name="webhook"),
    # Uploaded keyframes must be fetchable by Luma without a login; the token is unguessable.
    path("k/<str:token>/", files.keyframe, name="keyframe"),
    # The same uploads as the team sees them on a generation's page, after Luma no longer needs them.
    path("files/<str:token>/", files.upload, name="upload"),
    # Archived videos and posters, for logged-in team members, with Range support for seeking.
    path("generations/<int:pk>/video/", files.archived_video, name="video"),
    path("generations/<int:pk>/poster.jpg", files.poster, name="poster"),
    path("generations/<int:pk>/download/", files.download, name="download"),
    # A generation's further outputs (each layer of a layering, an HDR clip's EXR export), by place in its list.
    path("generations/<int:pk>/files/<int:index>/", files.extra_file, name="extra_file"),
    # Share links: public on purpose; the unguessable token is the credential and shows only what it shares.
    path("s/<str:token>/", share.share_page, name="share_page"),
    path("s/<str:token>/media/<int:pk>/", share.share_media, name="share_media"),
    path("s/<str:token>/poster/<int:pk>/", share.share_poster, name="share_poster"),
    path("generations/<int:pk>/share/", share.share_generation, name="share_generation"),
    path("boards/<int:pk>/share/", share.share_board, name="share_board"),
    path("shares/", share.shares, name="shares"),
    path("shares/<int:pk>/revoke/", share.revoke, name="share_revoke"),
    # A board or a selection as one streamed ZIP.
    path("export/", export.export, name="export"),
    # The dashboard: create, the shared library and its live cards.
    path("create/", views.create, name="create"),
    path("library/", views_library.library, name="library"),
    path("poll/", views_library.poll, name="poll"),
    path("me/", views_library.me, name="me"),
    path("generations/<int:pk>/", views_library.detail, name="detail"),
    path("generations/<int:pk>/favourite/", views_library.favourite, name="favourite"),
    path("generations/<int:pk>/delete/", views_library.delete, name="delete"),
    path("generations/<int:pk>/upscale/", views.upscale, name="upscale"),
    path("generations/<int:pk>/audio/", views.add_audio, name="add_audio"),
    path("generations/<int:pk>/continue/<slug:how>/", views.continue_generation, name="continue"),
    # The create form's library pickers and its source video upload.
    path("pick/", views.picker, name="picker"),
    path("uploads/video/", views.upload_video, name="upload_video"),
    # The team workspace: boards, review marks, comments, notifications (views_workspace.py).
    path("boards/", views_workspace.board_list, name="boards"),
    path("boards/<int:pk>/", views_workspace.board_page, name="board"),
    path("boards/<int:pk>/edit/", views_workspace.board_edit, name="board_edit"),
    path("boards/<int:pk>/delete/", views_workspace.board_delete, name="board_delete"),
    path("boards/add/", views_workspace.board_add_selected, name="board_add_selected"),
    path("boards/<int:pk>/remove/", views_workspace.board_remove_selected, name="board_remove_selected"),
    path("boards/use/", views_workspace.board_use, name="board_use"),
    path("generations/<int:pk>/boards/", views_workspace.card_boards, name="card_boards"),
    path("generations/<int:pk>/review/", views_workspace.review, name="review"),
    path("generations/<int:pk>/comments/", views_workspace.comment, name="comment"),
    path("notifications/", views_workspace.notifications, name="notifications"),
    path("notifications/read/", views_workspace.notifications_read, name="notifications_read"),
    path("notifications/bell/", views_workspace.bell, name="bell"),
    path("notifications/check/", views_workspace.notifications_check, name="notifications_check"),
    path("settings/notifications/", views_workspace.notification_settings, name="notification_settings"),
    # The team's money (views_team): usage for everyone, budgets and approvals for staff.
    path("usage/", views_team.usage, name="usage"),
    path("usage.csv", views_team.usage_csv, name="usage_csv"),
    path("settings/budgets/", views_team.settings_budgets, name="settings_budgets"),
    path("approvals/", views_team.approvals, name="approvals"),
    path("approvals/<int:pk>/approve/", views_team.approve, name="approve"),
    path("approvals/<int:pk>/reject/", views_team.reject, name="reject"),
    # Presets and recent prompts for the create form.
    path("presets/", presets.presets, name="presets"),
    path("presets/save/", presets.save, name="preset_save"),
    path("presets/prompt/", presets.reuse_prompt, name="reuse_prompt"),
    path("presets/<int:pk>/apply/", presets.apply, name="preset_apply"),
    path("presets/<int:pk>/delete/", presets.delete, name="preset_delete"),
]
