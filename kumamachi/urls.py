from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    # Staff log in in one place; the admin's own login page only redirects there.
    path(
        "admin/login/",
        RedirectView.as_view(pattern_name="budgets:staff-login", query_string=True),
    ),
    path("admin/", admin.site.urls),
    path("", include("budgets.urls")),
]
