from django.urls import path

from budgets import views

app_name = "budgets"

urlpatterns = [
    path("", views.city, name="home"),
    path("<int:year>/", views.city, name="city"),
    path("<int:year>/<slug:ward>/", views.ward, name="ward"),
    path("<int:year>/<slug:ward>/<int:pk>/", views.project, name="project"),
]
