"""Top-level URL routes: the admin, accounts, the favicon and the generations app."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from generations import views_library, views_site

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", views_site.logout, name="logout"),
    path("favicon.ico", views_site.favicon, name="favicon"),
    # Small fragments the page asks for: the create form's price estimate and the header's credit badge.
    path("estimate/", views_library.estimate, name="estimate"),
    path("credits/", views_library.credits_badge, name="credits_badge"),
    path("", include("generations.urls")),
]

handler404 = "generations.views_site.not_found"
handler403 = "generations.views_site.permission_denied"
