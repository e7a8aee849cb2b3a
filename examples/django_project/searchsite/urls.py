from articles import views
from django.urls import path

urlpatterns = [
    path("", views.search, name="home"),
    path("search/", views.search, name="search"),
]
