from django.contrib.auth import views as auth_views
from django.urls import path

from budgets import views

app_name = "budgets"

urlpatterns = [
    path("", views.city, name="home"),
    path("data/", views.open_data, name="data"),
    path("search/", views.search, name="search"),
    path("compare/", views.compare, name="compare"),
    path("glossary/", views.glossary, name="glossary"),
    path("export.xlsx", views.cross_year_export, name="cross-year-export"),
    path("<int:year>/export.xlsx", views.year_export, name="year-export"),
    path("<int:year>/data.csv", views.open_data_csv, name="data-csv"),
    path("<int:year>/data.json", views.open_data_json, name="data-json"),
    path("<int:year>/<slug:ward>/export.xlsx", views.ward_export, name="ward-export"),
    path("<int:year>/", views.city, name="city"),
    path("<int:year>/<slug:ward>/", views.ward, name="ward"),
    path("<int:year>/<slug:ward>/<int:pk>/", views.project, name="project"),
    # Staff. The fixed words come before <slug:ward> so they are never read as a ward.
    path(
        "staff/login/",
        auth_views.LoginView.as_view(
            template_name="staff/login.html", redirect_authenticated_user=True
        ),
        name="staff-login",
    ),
    path("staff/logout/", auth_views.LogoutView.as_view(), name="staff-logout"),
    path("staff/", views.staff_home, name="staff-home"),
    path("staff/projects/<int:pk>/", views.staff_project, name="staff-project"),
    path("staff/<int:year>/open/", views.staff_open, name="staff-open"),
    path("staff/<int:year>/export.xlsx", views.staff_export, name="staff-export"),
    path("staff/<int:year>/review/", views.staff_review, name="staff-review"),
    path("staff/<int:year>/publish/", views.staff_publish, name="staff-publish"),
    path("staff/<int:year>/<slug:ward>/", views.staff_sheet, name="staff-sheet"),
    path("staff/<int:year>/<slug:ward>/submit/", views.staff_submit, name="staff-submit"),
    path("staff/<int:year>/<slug:ward>/export.xlsx", views.staff_export, name="staff-ward-export"),
    path("staff/<int:year>/<slug:ward>/return/", views.staff_return, name="staff-return"),
    path("staff/<int:year>/<slug:ward>/import/", views.staff_import, name="staff-import"),
]
