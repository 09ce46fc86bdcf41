from django.contrib.auth import views as auth_views
from django.urls import path

from apps.accounts import views

app_name = "accounts"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/<int:pk>/revoke/", views.revoke, name="token_revoke"),
    path("teams/", views.TeamList.as_view(), name="team_list"),
    path("teams/new/", views.TeamCreate.as_view(), name="team_create"),
    path("teams/<slug:slug>/", views.TeamDetail.as_view(), name="team_detail"),
    path("teams/<slug:slug>/edit/", views.TeamUpdate.as_view(), name="team_update"),
    path("teams/<slug:slug>/delete/", views.TeamDelete.as_view(), name="team_delete"),
    path("people/", views.UserList.as_view(), name="user_list"),
    path("people/<int:pk>/edit/", views.UserUpdate.as_view(), name="user_update"),
]
