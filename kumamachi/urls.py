import os

from django.conf.urls.i18n import i18n_patterns
from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from django.views.generic import RedirectView

admin.site.site_header = _("kumamachi 管理画面")
admin.site.site_title = _("kumamachi 管理画面")
admin.site.index_title = _("事業・方向性・配分額・年度の管理")

urlpatterns = [
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
