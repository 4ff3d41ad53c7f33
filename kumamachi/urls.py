import os

from django.conf.urls.i18n import i18n_patterns
from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from django.views.generic import RedirectView

from kumamachi import views

admin.site.site_header = _("kumamachi 管理画面")
admin.site.site_title = _("kumamachi 管理画面")
admin.site.index_title = _("事業・方向性・配分額・年度の管理")

# The 500 page quotes the request id; 400.html, 403.html and 404.html are Django's defaults.
handler500 = views.server_error

urlpatterns = [
    # Outside the language prefix and the page cache: the database is asked every time.
    path("healthz", views.healthz, name="healthz"),
    # Staff log in in one place; the admin's own login page only redirects there.
    path(
        "admin/login/",
        RedirectView.as_view(pattern_name="budgets:staff-login", query_string=True),
    ),
    path("admin/", admin.site.urls),
]
# Japanese at the plain addresses, English under /en/ (the language switch links to it).
urlpatterns += i18n_patterns(path("", include("budgets.urls")), prefix_default_language=False)

# The load test's ceiling view (bench/ceiling.py): only when the benchmark asks for it.
if os.environ.get("KUMAMACHI_BENCH_CEILING") == "1":
    import bench.ceiling

    urlpatterns += [path("__bench__/ceiling/<slug:name>/", bench.ceiling.view)]
