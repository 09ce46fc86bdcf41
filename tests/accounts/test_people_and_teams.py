"""Teams and people: everyone reads; admins change roles, memberships and teams, with history."""

import pytest

from apps.accounts.models import Role, Team
from apps.core.models import AuditEntry

pytestmark = pytest.mark.django_db


def test_admin_changes_a_role_and_teams_through_the_api(admin_user, engineer, team_b, api_as):
    response = api_as(admin_user).patch(
        f"/api/v1/users/{engineer.pk}/",
        {"role": "lead", "teams": ["team-a", "team-b"]},
        format="json",
    )
    assert response.status_code == 200, response.json()
    engineer.refresh_from_db()
    assert engineer.role == Role.LEAD
    assert sorted(engineer.teams.values_list("slug", flat=True)) == ["team-a", "team-b"]
    entry = AuditEntry.objects.get(object_id=str(engineer.pk), action="update")
    assert entry.changes["role"] == ["engineer", "lead"]
    assert entry.changes["teams"] == [["Team A"], ["Team A", "Team B"]]


@pytest.mark.parametrize("persona", ["viewer", "engineer", "lead"])
def test_only_admins_change_people(request, persona, engineer_b, api_as):
    client = api_as(request.getfixturevalue(persona))
    assert client.get(f"/api/v1/users/{engineer_b.pk}/").status_code == 200
    response = client.patch(f"/api/v1/users/{engineer_b.pk}/", {"role": "admin"}, format="json")
    assert response.status_code == 403
    engineer_b.refresh_from_db()
    assert engineer_b.role == Role.ENGINEER


def test_admin_cannot_demote_themselves(admin_user, api_as):
    response = api_as(admin_user).patch(
        f"/api/v1/users/{admin_user.pk}/", {"role": "viewer"}, format="json"
    )
    assert response.status_code == 400
    assert (
        response.json()["errors"][0]["message"]
        == "You cannot take away your own admin role or access."
    )


def test_deactivated_user_cannot_use_tokens(admin_user, engineer, api_as):
    client = api_as(engineer)
    api_as(admin_user).patch(f"/api/v1/users/{engineer.pk}/", {"is_active": False}, format="json")
    assert client.get("/api/v1/me/").status_code == 401


def test_admin_edits_access_in_the_ui(client, admin_user, engineer, team_b):
    client.force_login(admin_user)
    page = client.get("/accounts/people/").content.decode()
    assert "engineer" in page and "Edit access" in page
    response = client.post(
        f"/accounts/people/{engineer.pk}/edit/",
        {"role": "lead", "teams": [team_b.pk], "is_active": "on"},
    )
    assert response.status_code == 302
    engineer.refresh_from_db()
    assert engineer.role == "lead" and list(engineer.teams.all()) == [team_b]


def test_engineer_cannot_open_access_form(client, engineer, engineer_b):
    client.force_login(engineer)
    assert client.get(f"/accounts/people/{engineer_b.pk}/edit/").status_code == 403
    assert "Edit access" not in client.get("/accounts/people/").content.decode()


def test_team_pages(client, engineer, interface_a):
    client.force_login(engineer)
    page = client.get("/accounts/teams/").content.decode()
    assert "Team A" in page
    detail = client.get("/accounts/teams/team-a/").content.decode()
    assert "INT-042" in detail and "engineer" in detail
    assert client.get("/accounts/teams/?format=csv").status_code == 200


def test_admin_creates_team_in_the_ui(client, admin_user):
    client.force_login(admin_user)
    response = client.post(
        "/accounts/teams/new/", {"name": "Data Platform", "slug": "data-platform"}
    )
    assert response.status_code == 302
    assert Team.objects.filter(slug="data-platform").exists()


def test_lead_cannot_create_team_in_the_ui(client, lead):
    client.force_login(lead)
    response = client.post("/accounts/teams/new/", {"name": "Shadow", "slug": "shadow"})
    assert response.status_code == 200
    assert "Only admins create teams." in response.content.decode()
    assert not Team.objects.filter(slug="shadow").exists()
