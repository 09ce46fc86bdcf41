"""Mapping spec pages: the list, new mapping, the editor, review actions, versions,
coverage, suggestions and mapping sheets, with the permission policy."""

import io

import pytest
from django.utils import timezone
from openpyxl import load_workbook

from apps.core.models import AuditEntry
from apps.mappings import services
from apps.mappings.models import FieldRule, MappingSpec, SpecStatus
from tests.mappings import views_support
from tests.mappings.views_support import (
    SOURCE_SCHEMA,
    add_row,
    approve,
    fresh,
)

pytestmark = pytest.mark.django_db

order_spec = views_support.order_spec


def page(client, url) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


# ---------------------------------------------------------------- list and create


def test_the_list_shows_versions_with_status_and_rows(client, engineer, order_spec):
    client.force_login(engineer)
    html = page(client, "/interfaces/INT-042/mappings/")
    assert f'href="/mappings/{order_spec.pk}/"><strong>Orders to ERP</strong>' in html
    assert '<span class="badge spec-draft">Draft</span>' in html
    assert '<td class="num">2</td>' in html  # rows
    assert 'href="/interfaces/INT-042/mappings/new/"' in html
    assert "No mapping matches these filters." in page(
        client, "/interfaces/INT-042/mappings/?q=nothing"
    )
    assert "Orders to ERP" in page(client, "/interfaces/INT-042/mappings/?q=orders&status=draft")


def test_the_empty_list_explains_what_a_mapping_is(client, engineer, viewer, interface_a):
    client.force_login(engineer)
    html = page(client, "/interfaces/INT-042/mappings/")
    assert "INT-042 has no mapping yet." in html
    assert "how the target payload is made from the source payload" in html
    assert html.count('href="/interfaces/INT-042/mappings/new/"') == 2
    client.force_login(viewer)
    html = page(client, "/interfaces/INT-042/mappings/")
    assert "/mappings/new/" not in html and "The owner team (Team A) writes its mappings." in html


def test_the_interface_page_links_its_mappings(client, viewer, interface_a):
    client.force_login(viewer)
    assert 'href="/interfaces/INT-042/mappings/">Mapping specs</a>' in page(
        client, "/interfaces/INT-042/"
    )


def test_an_engineer_creates_a_mapping_with_inline_schemas(client, engineer, interface_a):
    client.force_login(engineer)
    response = client.post(
        "/interfaces/INT-042/mappings/new/",
        {
            "name": "Invoices",
            "description": "Invoice status",
            "source_format": "json",
            "source_schema": '{"type": "object"}',
            "target_format": "xml",
            "target_schema": "",
        },
    )
    spec = MappingSpec.objects.get(name="Invoices")
    assert response.status_code == 302 and response["Location"] == f"/mappings/{spec.pk}/"
    assert (spec.version, spec.status, spec.source_schema, spec.target_format) == (
        1,
        SpecStatus.DRAFT,
        {"type": "object"},
        "xml",
    )
    assert AuditEntry.objects.filter(object_id=str(spec.pk), action="create").exists()


def test_bad_schemas_are_shown_by_field_and_nothing_is_saved(client, engineer, interface_a):
    client.force_login(engineer)
    response = client.post(
        "/interfaces/INT-042/mappings/new/",
        {
            "name": "Invoices",
            "source_format": "json",
            "source_schema": '{"type": "object",',
            "target_format": "json",
            "target_schema": '{"type": 5}',
            "target_operation": "GET /x",
        },
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert errors["source_schema"] == [
        "Source JSON Schema is not valid JSON: Expecting property name enclosed in double "
        "quotes (line 1, column 19)."
    ]
    assert errors["target_schema"][0].startswith("Not a valid JSON Schema at /type:")
    assert errors["target_operation"] == ["Choose a registered spec first."]
    assert not MappingSpec.objects.exists()


def test_creating_is_for_writers_of_the_owner_team(client, viewer, engineer_b, interface_a):
    data = {"name": "x", "source_format": "json", "target_format": "json"}
    for user in (viewer, engineer_b):
        client.force_login(user)
        assert client.get("/interfaces/INT-042/mappings/new/").status_code == 403
        assert client.post("/interfaces/INT-042/mappings/new/", data).status_code == 403
    assert not MappingSpec.objects.exists()


# ---------------------------------------------------------------- the editor


def test_the_editor_shows_the_sheet_with_readable_rules(client, engineer, order_spec):
    client.force_login(engineer)
    html = page(client, f"/mappings/{order_spec.pk}/")
    assert '<span class="badge spec-draft">Draft</span>' in html
    assert "revision <span data-revision-text>3</span>" in html
    assert '<tr id="row-2">' in html
    assert '<code class="rule-text">map: N=new; S=shipped</code>' in html
    assert '<code class="rule-text">copy</code>' in html
    assert "Order state" in html
    # Review actions and row controls for a writer of the team, each with the revision.
    assert '<input type="hidden" name="action" value="submit">' in html
    assert html.count('name="revision" value="3" data-spec-revision') == 3
    assert f'hx-get="/mappings/{order_spec.pk}/rows/new/"' in html
    assert "Approve" not in html  # a draft is submitted first, and engineers never approve
    # The live preview starts from the first mapping test and listens for row changes.
    assert 'hx-trigger="load, submit, rows-changed from:body"' in html
    assert 'hx-trigger="input changed delay:500ms"' in html
    assert "&quot;number&quot;: &quot;SO-1&quot;" in html
    assert f'hx-post="/mappings/{order_spec.pk}/tests/run/"' in html


def test_the_editor_queries_do_not_grow_with_rows_and_tests(
    client, engineer, order_spec, django_assert_num_queries
):
    client.force_login(engineer)
    url = f"/mappings/{order_spec.pk}/"
    client.get(url)  # warms the content-type cache the history reads through
    # session, user, spec with interface and people, rows, tests, versions, history,
    # team ids (can_change)
    with django_assert_num_queries(8):
        assert client.get(url).status_code == 200
    for number in range(3, 40):
        add_row(engineer, order_spec, number, f"extra{number}", ["number"])
    with django_assert_num_queries(8):
        html = client.get(url).content.decode()
    assert html.count('<tr id="row-') == 39


def test_viewers_and_other_teams_see_no_edit_controls(client, viewer, engineer_b, order_spec):
    for user in (viewer, engineer_b):
        client.force_login(user)
        html = page(client, f"/mappings/{order_spec.pk}/")
        for control in ("Submit for review", "Edit details", "Import sheet", "Add row", "Delete"):
            assert control not in html, (user, control)
        assert "/rows/new/" not in html and "data-spec-revision" not in html
        # Reading is open: anyone may try samples and run the mapping tests.
        assert 'id="preview-form"' in html and "Run all tests" in html
        assert 'hx-include="#row-editor"' not in html


def test_an_approved_version_is_read_only(client, engineer, lead, order_spec):
    spec = approve(order_spec, engineer, lead)
    client.force_login(engineer)
    html = page(client, f"/mappings/{spec.pk}/")
    assert '<span class="badge spec-approved">Approved</span>' in html
    assert "Approved by <strong>lead</strong> at" in html
    assert "This version is approved and frozen" in html
    for control in ("Edit details", "Import sheet", "Add row", "/rows/new/", "/delete/"):
        assert control not in html
    assert "Start new draft" in html
    response = client.get(f"/mappings/{spec.pk}/edit/")
    assert response.status_code == 302
    rule = spec.rules.get(position=1)
    response = client.post(
        f"/mapping-rows/{rule.pk}/edit/",
        {
            "row-position": 1,
            "row-target_path": "id",
            "row-source_paths": "state",
            "row-kind": "copy",
            "row-revision": spec.revision,
        },
    )
    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [
        "INT-042 Orders to ERP v1 is approved and frozen; start a new draft from it to change it."
    ]
    assert FieldRule.objects.get(pk=rule.pk).source_paths == ["number"]


# ---------------------------------------------------------------- review actions


def test_submit_return_and_approve(client, engineer, lead, order_spec):
    client.force_login(engineer)
    url = f"/mappings/{order_spec.pk}/status/"
    response = client.post(url, {"action": "submit", "revision": 3}, follow=True)
    assert messages_of(response) == ["Submitted INT-042 Orders to ERP v1 for review."]
    assert fresh(order_spec).status == SpecStatus.IN_REVIEW
    html = response.content.decode()
    assert "Return to draft" in html and ">Approve<" not in html
    # Engineers do not approve: the policy refuses it.
    assert client.post(url, {"action": "approve", "revision": 4}).status_code == 403
    client.force_login(lead)
    assert ">Approve</button>" in page(client, f"/mappings/{order_spec.pk}/")
    response = client.post(url, {"action": "approve", "revision": 4}, follow=True)
    assert messages_of(response) == [
        "Approved INT-042 Orders to ERP v1; this version is now frozen."
    ]
    spec = fresh(order_spec)
    assert (spec.status, spec.approved_by) == (SpecStatus.APPROVED, lead)


def test_a_stale_status_change_shows_the_conflict(client, engineer, lead, order_spec):
    services.save_spec(lead, fresh(order_spec), 3)  # someone else saved revision 4
    client.force_login(engineer)
    response = client.post(
        f"/mappings/{order_spec.pk}/status/", {"action": "submit", "revision": 3}, follow=True
    )
    when = timezone.localtime(fresh(order_spec).updated_at).strftime("%Y-%m-%d %H:%M:%S %Z")
    assert messages_of(response) == [
        f"INT-042 Orders to ERP v1 was changed by lead at {when} (revision 4; you edited "
        "revision 3). Reload it and apply your changes again."
    ]
    assert fresh(order_spec).status == SpecStatus.DRAFT


def test_a_mapping_that_does_not_compile_is_not_submitted(client, engineer, order_spec):
    add_row(engineer, order_spec, 3, "country", ["nowhere"])
    client.force_login(engineer)
    response = client.post(
        f"/mappings/{order_spec.pk}/status/", {"action": "submit", "revision": 4}, follow=True
    )
    [message] = messages_of(response)
    assert message.startswith("INT-042 Orders to ERP v1 does not compile yet (1 problem): row 3")
    assert "nowhere" in message
    assert fresh(order_spec).status == SpecStatus.DRAFT


def test_a_new_draft_starts_from_an_approved_version(client, engineer, lead, order_spec):
    spec = approve(order_spec, engineer, lead)
    client.force_login(engineer)
    response = client.post(f"/mappings/{spec.pk}/new-draft/")
    draft = MappingSpec.objects.get(version=2)
    assert response["Location"] == f"/mappings/{draft.pk}/"
    assert (draft.based_on, draft.rules.count(), draft.tests.count()) == (spec, 2, 1)
    html = page(client, f"/mappings/{draft.pk}/")
    assert f'based on <a href="/mappings/{spec.pk}/">v1</a>' in html
    response = client.post(f"/mappings/{spec.pk}/new-draft/", follow=True)
    assert messages_of(response) == ["Version 2 of Orders to ERP is still open; edit that one."]


def test_a_draft_is_deleted_after_confirmation(client, engineer, engineer_b, order_spec):
    client.force_login(engineer_b)
    assert client.get(f"/mappings/{order_spec.pk}/delete/").status_code == 403
    assert client.post(f"/mappings/{order_spec.pk}/delete/").status_code == 403
    client.force_login(engineer)
    html = page(client, f"/mappings/{order_spec.pk}/delete/")
    assert "Delete INT-042 Orders to ERP v1?" in html
    assert "goes with its 2 rows and 1 mapping test" in html
    response = client.post(f"/mappings/{order_spec.pk}/delete/")
    assert response["Location"] == "/interfaces/INT-042/mappings/"
    assert not MappingSpec.objects.exists()


def test_an_approved_version_is_never_deleted(client, engineer, lead, order_spec):
    spec = approve(order_spec, engineer, lead)
    client.force_login(engineer)
    response = client.post(f"/mappings/{spec.pk}/delete/", follow=True)
    assert messages_of(response) == [
        "INT-042 Orders to ERP v1 is approved; approved versions are kept as the record."
    ]
    assert MappingSpec.objects.filter(pk=spec.pk).exists()


# ---------------------------------------------------------------- edit details


def spec_form_data(spec, **changes):
    data = {
        "description": spec.description,
        "source_format": spec.source_format,
        "source_schema": '{"type": "object"}',
        "target_format": spec.target_format,
        "target_schema": "",
        "revision": spec.revision,
    }
    data.update(changes)
    return data


def test_details_are_saved_with_the_revision_read(client, engineer, order_spec):
    client.force_login(engineer)
    html = page(client, f"/mappings/{order_spec.pk}/edit/")
    assert 'name="revision" value="3"' in html and 'name="name"' in html and "disabled" in html
    response = client.post(
        f"/mappings/{order_spec.pk}/edit/",
        spec_form_data(order_spec, description="New words", name="Renamed"),
    )
    assert response.status_code == 302
    spec = fresh(order_spec)
    assert (spec.description, spec.name, spec.revision) == ("New words", "Orders to ERP", 4)


def test_a_conflicting_save_is_refused_with_a_reload_link(client, engineer, lead, order_spec):
    services.save_spec(lead, fresh(order_spec), 3)
    client.force_login(engineer)
    response = client.post(
        f"/mappings/{order_spec.pk}/edit/", spec_form_data(order_spec, description="Mine")
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "was changed by lead at" in html and "you edited revision 3" in html
    assert f'<a href="/mappings/{order_spec.pk}/">Reload the mapping</a>' in html
    assert fresh(order_spec).description == "Order intake."


# ---------------------------------------------------------------- mapping sheets


def test_the_sheet_exports_as_csv_and_xlsx(client, viewer, order_spec):
    client.force_login(viewer)
    response = client.get(f"/mappings/{order_spec.pk}/export/csv/")
    assert response["Content-Disposition"] == 'attachment; filename="INT-042-Orders-to-ERP-v1.csv"'
    lines = response.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("target field,target type,required,source field")
    assert lines[2].startswith("status,,yes,state,map: N=new; S=shipped")
    response = client.get(f"/mappings/{order_spec.pk}/export/xlsx/")
    sheet = load_workbook(io.BytesIO(response.content)).active
    assert [cell.value for cell in sheet[2]][:4] == ["id", "string", "yes", "number"]


GOOD_SHEET = (
    b"target field,required,source field,transformation rule\n"
    b"id,yes,number,\n"
    b"status,yes,state,map: N=new; S=shipped\n"
    b"amount,no,total,multiply by 100\n"
)


def upload(name, data):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="text/csv")


def test_a_sheet_import_replaces_the_rows(client, engineer, order_spec):
    client.force_login(engineer)
    url = f"/mappings/{order_spec.pk}/import/"
    html = page(client, url)
    assert 'name="revision" value="3"' in html and 'accept=".csv,.xlsx"' in html
    response = client.post(url, {"file": upload("sheet.csv", GOOD_SHEET), "revision": 3})
    assert response.status_code == 302
    rows = list(fresh(order_spec).rules.values_list("position", "target_path", "kind"))
    assert rows == [(1, "id", "copy"), (2, "status", "code_map"), (3, "amount", "arithmetic")]


def test_a_bad_sheet_lists_its_problems_and_saves_nothing(client, engineer, order_spec):
    client.force_login(engineer)
    bad = b"target field,required,source field\nid,maybe,number\n,yes,x\n"
    response = client.post(
        f"/mappings/{order_spec.pk}/import/", {"file": upload("bad.csv", bad), "revision": 3}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "The sheet was not imported: 2 problems" in html
    assert "Row 2, column &quot;required&quot;" in html
    assert "Row 3, column &quot;target field&quot;" in html
    assert fresh(order_spec).revision == 3 and fresh(order_spec).rules.count() == 2


def test_an_import_over_a_newer_revision_is_a_conflict(client, engineer, lead, order_spec):
    services.save_spec(lead, fresh(order_spec), 3)
    client.force_login(engineer)
    response = client.post(
        f"/mappings/{order_spec.pk}/import/", {"file": upload("s.csv", GOOD_SHEET), "revision": 3}
    )
    assert "was changed by lead" in response.content.decode()
    assert fresh(order_spec).rules.count() == 2


def test_importing_is_for_the_owner_team(client, viewer, engineer_b, order_spec):
    for user in (viewer, engineer_b):
        client.force_login(user)
        assert client.get(f"/mappings/{order_spec.pk}/import/").status_code == 403
        response = client.post(
            f"/mappings/{order_spec.pk}/import/",
            {"file": upload("s.csv", GOOD_SHEET), "revision": 3},
        )
        assert response.status_code == 403
    assert fresh(order_spec).revision == 3


# ---------------------------------------------------------------- versions


def test_the_diff_compares_with_the_version_it_is_based_on(client, engineer, lead, order_spec):
    spec = approve(order_spec, engineer, lead)
    draft = services.start_new_draft(engineer, spec)
    rule = draft.rules.get(target_path="status")
    rule.params = {"map": {"N": "new"}, "default": "shipped"}
    services.save_rule(engineer, rule, draft.revision)
    add_row(engineer, draft, 3, "country", ["country"])
    draft = fresh(draft)
    draft.description = "Now with the country"
    services.save_spec(engineer, draft, draft.revision)
    client.force_login(engineer)
    html = page(client, f"/mappings/{draft.pk}/")
    assert f'href="/mappings/{draft.pk}/diff/?old={spec.pk}"' in html
    response = client.get(f"/mappings/{draft.pk}/diff/")
    html = response.content.decode()
    assert response.context["old"] == spec and response.context["new"] == draft
    assert 'Spec fields <span class="muted">(1 changed)</span>' in html
    assert "Now with the country" in html and "Order intake." in html
    changes = [(c.target_path, c.change, c.fields) for c in response.context["diff"].rows]
    assert changes == [("status", "changed", ["params"]), ("country", "added", [])]
    assert '<span class="badge change-added">added</span>' in html
    assert "map: N=new; S=shipped" in html and "map: N=new" in html


def test_the_diff_of_a_lone_version_explains_itself(client, viewer, order_spec):
    client.force_login(viewer)
    html = page(client, f"/mappings/{order_spec.pk}/diff/")
    assert "Orders to ERP has one version so far." in html


# ---------------------------------------------------------------- coverage


def test_coverage_lists_each_part_with_empty_states(client, viewer, engineer, order_spec):
    add_row(engineer, order_spec, 3, "amount", ["nowhere"], "cast", {"to": "number"})
    client.force_login(viewer)
    response = client.get(f"/mappings/{order_spec.pk}/coverage/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Every required field has a rule." in html
    assert 'Unused source fields <span class="muted">(2)</span>' in html
    assert "<code>country</code>" in html
    assert 'Unknown source paths <span class="muted">(1)</span>' in html
    assert "<code>nowhere</code>" in html
    assert "The mapping does not compile" in html


def test_coverage_of_a_clean_mapping_says_so(client, viewer, order_spec):
    client.force_login(viewer)
    html = page(client, f"/mappings/{order_spec.pk}/coverage/")
    assert "Every required field has a rule." in html
    assert "Every source path a row reads is declared in the source schema." in html
    assert "No row writes a value its target field can never take." in html
    assert "Every row is exercised by some mapping test." in html


# ---------------------------------------------------------------- suggestions


@pytest.fixture
def bare_spec(interface_a, engineer):
    return services.create_spec(
        engineer,
        MappingSpec(
            interface=interface_a,
            name="Suggested",
            source_schema={
                "type": "object",
                "properties": {"orderNumber": {"type": "string"}, "qty": {"type": "integer"}},
            },
            target_schema={
                "type": "object",
                "properties": {"order_number": {"type": "string"}, "quantity": {"type": "number"}},
            },
        ),
    )


def test_suggestions_are_listed_and_accepted_in_one_go(client, engineer, bare_spec):
    client.force_login(engineer)
    url = f"/mappings/{bare_spec.pk}/suggestions/"
    response = client.get(url)
    keys = [key for _, key, _, _ in response.context["suggestions"]]
    assert keys == ['["order_number", "orderNumber"]', '["quantity", "qty"]']
    html = response.content.decode()
    assert "<code>orderNumber</code>" in html and 'name="revision" value="1"' in html
    response = client.post(url, {"accept": keys, "revision": 1})
    assert response["Location"] == f"/mappings/{bare_spec.pk}/#rows"
    rows = list(fresh(bare_spec).rules.values_list("position", "target_path", "source_paths"))
    assert rows == [(1, "order_number", ["orderNumber"]), (2, "quantity", ["qty"])]
    assert fresh(bare_spec).revision == 2  # one claim for all the rows
    assert "No suggestions" in page(client, url)


def test_a_stale_accept_changes_nothing(client, engineer, lead, bare_spec):
    services.save_spec(lead, fresh(bare_spec), 1)
    client.force_login(engineer)
    response = client.post(
        f"/mappings/{bare_spec.pk}/suggestions/",
        {"accept": ['["quantity", "qty"]'], "revision": 1},
    )
    assert response.status_code == 200
    assert "was changed by lead" in response.content.decode()
    assert not FieldRule.objects.exists()


def test_a_hidden_suggestion_stays_hidden_until_shown(client, engineer, bare_spec):
    client.force_login(engineer)
    url = f"/mappings/{bare_spec.pk}/suggestions/"
    client.post(url, {"reject": '["quantity", "qty"]', "revision": 1})
    response = client.get(url)
    assert [key for _, key, _, _ in response.context["suggestions"]] == [
        '["order_number", "orderNumber"]'
    ]
    assert "Show 1 hidden" in response.content.decode()
    shown = client.get(url + "?hidden=1").context["suggestions"]
    assert [hidden for _, _, hidden, _ in shown] == [False, True]
    client.post(url, {"unhide": "1", "revision": 1})
    assert len(client.get(url).context["suggestions"]) == 2


def test_suggestions_need_both_schemas_and_a_writer(client, viewer, engineer, interface_a):
    spec = services.create_spec(
        engineer, MappingSpec(interface=interface_a, name="No schemas", source_schema=SOURCE_SCHEMA)
    )
    client.force_login(viewer)
    html = page(client, f"/mappings/{spec.pk}/suggestions/")
    assert "Suggestions need both schemas; this mapping has no target schema." in html
    response = client.post(f"/mappings/{spec.pk}/suggestions/", {"accept": [], "revision": 1})
    assert response.status_code == 403
