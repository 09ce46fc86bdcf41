"""The editor's rows (inline through htmx), the live preview and the mapping tests."""

import json

import pytest

from apps.core.models import AuditEntry
from apps.mappings import services
from apps.mappings.models import FieldRule, MappingSpec, MappingTest
from tests.mappings import views_support
from tests.mappings.views_support import HTMX, add_row, approve, fresh, htmx

pytestmark = pytest.mark.django_db

order_spec = views_support.order_spec


def row_data(revision, **fields):
    data = {
        "row-position": 3,
        "row-target_path": "amount",
        "row-source_paths": "total",
        "row-kind": "cast",
        "row-params": '{"to": "number"}',
        "row-target_type": "number",
        "row-notes": "",
        "row-example": "",
        "row-revision": revision,
    }
    data.update({f"row-{name}": value for name, value in fields.items()})
    return data


# ---------------------------------------------------------------- rows


def test_the_row_form_loads_into_the_editor(client, engineer, order_spec):
    client.force_login(engineer)
    response = client.get(f"/mappings/{order_spec.pk}/rows/new/", **HTMX)
    html = response.content.decode()
    assert '<form id="row-form"' in html and "<html" not in html
    assert 'name="row-position" value="3"' in html  # after the last row
    assert 'name="row-revision" value="3"' in html
    assert "What each kind takes" in html and "<code>code_map</code>" in html
    # Its inputs preview the unsaved row with the editor's sample.
    assert 'hx-trigger="load, input delay:500ms from:#row-form, change from:#row-form"' in html
    assert f'hx-post="/mappings/{order_spec.pk}/preview/"' in html
    rule = order_spec.rules.get(position=2)
    html = client.get(f"/mapping-rows/{rule.pk}/edit/", **HTMX).content.decode()
    assert "Edit row 2" in html and 'name="row-source_paths" value="state"' in html
    assert "&quot;N&quot;: &quot;new&quot;" in html


def test_a_saved_row_refreshes_the_table_and_tells_the_preview(client, engineer, order_spec):
    client.force_login(engineer)
    response = client.post(
        f"/mappings/{order_spec.pk}/rows/new/",
        row_data(3, source_paths="total", notes="Net amount"),
        **HTMX,
    )
    assert response.status_code == 200
    assert json.loads(response["HX-Trigger-After-Swap"]) == {"rows-changed": {"revision": 4}}
    html = response.content.decode()
    assert "Saved row 3 (amount)." in html
    assert '<div id="rows-table" hx-swap-oob="true">' in html
    assert '<tr id="row-3">' in html and '<code class="rule-text">cast: number</code>' in html
    rule = FieldRule.objects.get(target_path="amount")
    assert (rule.source_paths, rule.params, rule.notes) == (
        ["total"],
        {"to": "number"},
        "Net amount",
    )
    assert fresh(order_spec).revision == 4
    assert AuditEntry.objects.filter(object_id=str(rule.pk), action="create").exists()


def test_without_htmx_a_saved_row_goes_back_to_the_editor(client, engineer, order_spec):
    client.force_login(engineer)
    html = client.get(f"/mappings/{order_spec.pk}/rows/new/").content.decode()
    assert "<html" in html and 'id="preview-form"' in html  # a page with its own preview
    response = client.post(f"/mappings/{order_spec.pk}/rows/new/", row_data(3))
    assert response["Location"] == f"/mappings/{order_spec.pk}/#row-3"


def test_bad_rows_show_errors_by_field_and_save_nothing(client, engineer, order_spec):
    client.force_login(engineer)
    url = f"/mappings/{order_spec.pk}/rows/new/"
    response = client.post(url, row_data(3, params='{"to": '), **HTMX)
    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors["params"] == [
        "Params is not valid JSON: Expecting value (line 1, column 7)."
    ]
    response = client.post(
        url, row_data(3, target_path="a[", kind="pad", params='{"fill": "ab"}'), **HTMX
    )
    errors = response.context["form"].errors
    assert set(errors) == {"target_path", "params"}
    assert '<div class="field invalid f-target_path">' in response.content.decode()
    response = client.post(url, row_data(3, target_path="id"), **HTMX)
    assert response.context["form"].errors["target_path"] == ["Row 1 already maps id."]
    assert not FieldRule.objects.filter(position=3).exists()
    assert fresh(order_spec).revision == 3
    assert "HX-Trigger-After-Swap" not in response


def test_a_row_saved_over_a_newer_revision_is_a_conflict(client, engineer, lead, order_spec):
    add_row(lead, order_spec, 3, "country", ["country"])  # revision 4, by the lead
    client.force_login(engineer)
    rule = order_spec.rules.get(position=1)
    response = client.post(
        f"/mapping-rows/{rule.pk}/edit/",
        row_data(3, position=1, target_path="id", source_paths="state", kind="copy", params=""),
        **HTMX,
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "INT-042 Orders to ERP v1 was changed by lead at" in html
    assert "(revision 4; you edited revision 3)" in html
    assert f'<a href="/mappings/{order_spec.pk}/">Reload the mapping</a>' in html
    assert FieldRule.objects.get(pk=rule.pk).source_paths == ["number"]


def test_a_row_is_deleted_inline(client, engineer, order_spec):
    client.force_login(engineer)
    rule = order_spec.rules.get(position=2)
    html = client.get(f"/mapping-rows/{rule.pk}/delete/").content.decode()
    assert "Delete row 2 (status) of INT-042 Orders to ERP v1?" in html
    response = client.post(f"/mapping-rows/{rule.pk}/delete/", {"revision": 3}, **HTMX)
    assert json.loads(response["HX-Trigger-After-Swap"]) == {"rows-changed": {"revision": 4}}
    html = response.content.decode()
    assert html.startswith('<div id="rows-table">')
    assert '<tr id="row-1">' in html and '<tr id="row-2">' not in html
    assert not FieldRule.objects.filter(pk=rule.pk).exists()


def test_a_stale_delete_shows_the_conflict_and_keeps_the_row(client, engineer, lead, order_spec):
    add_row(lead, order_spec, 3, "country", ["country"])
    client.force_login(engineer)
    rule = order_spec.rules.get(position=2)
    response = client.post(f"/mapping-rows/{rule.pk}/delete/", {"revision": 3}, **HTMX)
    html = response.content.decode()
    assert "was changed by lead" in html and "Reload the mapping" in html
    assert "HX-Trigger-After-Swap" not in response
    assert FieldRule.objects.filter(pk=rule.pk).exists()


@pytest.mark.parametrize("persona", ["viewer", "engineer_b"])
def test_rows_are_changed_by_the_owner_team_only(request, client, persona, order_spec):
    client.force_login(request.getfixturevalue(persona))
    rule = order_spec.rules.get(position=1)
    assert client.get(f"/mappings/{order_spec.pk}/rows/new/").status_code == 403
    assert client.post(f"/mappings/{order_spec.pk}/rows/new/", row_data(3)).status_code == 403
    assert client.get(f"/mapping-rows/{rule.pk}/edit/").status_code == 403
    assert client.post(f"/mapping-rows/{rule.pk}/delete/", {"revision": 3}).status_code == 403
    assert fresh(order_spec).revision == 3


@pytest.mark.parametrize("persona", ["lead", "admin_user"])
def test_leads_and_admins_change_rows(request, client, persona, order_spec):
    client.force_login(request.getfixturevalue(persona))
    response = client.post(f"/mappings/{order_spec.pk}/rows/new/", row_data(3))
    assert response.status_code == 302
    assert fresh(order_spec).rules.count() == 3


# ---------------------------------------------------------------- live preview


def preview(client, spec, sample, **extra):
    headers = extra.pop("headers", HTMX)
    return client.post(f"/mappings/{spec.pk}/preview/", {"sample": sample, **extra}, **headers)


def test_the_preview_shows_the_output_and_the_problems(client, engineer, order_spec):
    client.force_login(engineer)
    response = preview(client, order_spec, '{"number": "SO-7", "state": "S"}')
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert response.context["result"].output == {"id": "SO-7", "status": "shipped"}
    assert "&quot;id&quot;: &quot;SO-7&quot;" in html and "No problems." in html
    response = preview(client, order_spec, '{"number": 7, "state": "X"}')
    html = response.content.decode()
    assert 'Problems <span class="muted">(' in html
    assert '<a href="#row-2">row 2</a>' in html and "<code>status</code>" in html
    assert "&#x27;X&#x27; is not in the code map" in html
    assert "expected a string, got an integer (7)" in html
    assert "missing (required)" in html


def test_bad_json_in_the_sample_is_a_clear_message(client, engineer, order_spec):
    client.force_login(engineer)
    response = preview(client, order_spec, '{"number": "SO-7",')
    assert response.status_code == 200
    html = response.content.decode()
    assert "The sample cannot be read:</strong> the source is not valid JSON:" in html
    assert "Output" not in html
    response = preview(client, order_spec, "  ")
    assert "Paste a sample source or load a mapping test" in response.content.decode()


def test_loading_a_mapping_test_fills_the_sample(client, engineer, order_spec):
    client.force_login(engineer)
    test = order_spec.tests.get()
    response = preview(
        client, order_spec, "", load_test=test.pk, headers=htmx(trigger_name="load_test")
    )
    html = response.content.decode()
    assert '<textarea id="preview-sample" name="sample"' in html and 'hx-swap-oob="true"' in html
    assert "&quot;number&quot;: &quot;SO-1&quot;" in html
    assert response.context["result"].output == {"id": "SO-1", "status": "new"}


def test_the_row_form_previews_its_unsaved_values(client, engineer, order_spec):
    client.force_login(engineer)
    rule = order_spec.rules.get(position=2)
    fields = {
        "row_preview": "1",
        "row_pk": rule.pk,
        "row-position": "2",
        "row-target_path": "status",
        "row-source_paths": "",
        "row-kind": "constant",
        "row-params": '{"value": "new"}',
    }
    response = preview(client, order_spec, '{"number": "SO-7", "state": "S"}', **fields)
    html = response.content.decode()
    assert response.context["result"].output == {"id": "SO-7", "status": "new"}
    assert "With your unsaved row 2 (<code>status</code>) — not saved yet." in html
    # Params that are not JSON yet are reported; the row previews without them.
    fields["row-source_paths"] = "state"
    fields["row-kind"] = "upper"
    fields["row-params"] = '{"oops": '
    response = preview(client, order_spec, '{"number": "SO-7", "state": "S"}', **fields)
    html = response.content.decode()
    assert "Params are not valid JSON yet:" in html
    assert response.context["result"].output == {"id": "SO-7", "status": "S"}
    # A new row (no pk) is previewed next to the saved ones.
    new = dict(fields, row_pk="", **{"row-position": "3", "row-target_path": "amount"})
    new.update({"row-source_paths": "total", "row-kind": "copy", "row-params": ""})
    response = preview(client, order_spec, '{"number": "SO-7", "state": "S", "total": 2}', **new)
    assert response.context["result"].output == {"id": "SO-7", "status": "shipped", "amount": 2}
    assert FieldRule.objects.get(pk=rule.pk).kind == "code_map"  # nothing saved
    assert fresh(order_spec).revision == 3


def test_an_xml_target_is_previewed_rendered(client, engineer, interface_a):
    spec = services.create_spec(
        engineer, MappingSpec(interface=interface_a, name="To XML", target_format="xml")
    )
    add_row(engineer, spec, 1, "Order.Id", ["number"])
    client.force_login(engineer)
    response = preview(client, spec, '{"number": "SO-1"}')
    html = response.content.decode()
    assert "Rendered XML" in html
    assert "&lt;Order&gt;&lt;Id&gt;SO-1&lt;/Id&gt;&lt;/Order&gt;" in html.replace("\n", "")


def test_readers_preview_and_run_tests_without_writing(client, viewer, order_spec):
    client.force_login(viewer)
    response = preview(client, order_spec, '{"number": "SO-7", "state": "N"}')
    assert response.context["result"].output == {"id": "SO-7", "status": "new"}
    html = client.post(f"/mappings/{order_spec.pk}/tests/run/", **HTMX).content.decode()
    assert "1 of 1 passed" in html
    # Without htmx the preview is a page of its own.
    response = preview(client, order_spec, "{}", headers={})
    assert (
        "<html" in response.content.decode() and "Back to the mapping" in response.content.decode()
    )
    assert fresh(order_spec).revision == 3
    assert not AuditEntry.objects.filter(actor=viewer).exists()


# ---------------------------------------------------------------- mapping tests


def test_running_the_tests_shows_pass_and_fail_with_the_diff(client, engineer, order_spec):
    services.save_mapping_test(
        engineer,
        MappingTest(
            spec=fresh(order_spec),
            name="shipped order",
            source_payload={"number": "SO-2", "state": "S"},
            expected_payload={"id": "SO-2", "status": "new", "extra": 1},
        ),
    )
    client.force_login(engineer)
    response = client.post(f"/mappings/{order_spec.pk}/tests/run/", **HTMX)
    html = response.content.decode()
    assert '<span class="badge job-failed">1 of 2 passed</span>' in html
    assert '<span class="badge job-succeeded">pass</span> new order' in html
    assert '<span class="badge job-failed">fail</span> shipped order' in html
    assert "<td><code>extra</code></td>" in html and "change-removed" in html
    assert "<td><code>status</code></td>" in html
    assert "&quot;new&quot;" in html and "&quot;shipped&quot;" in html


def test_tests_of_a_mapping_that_does_not_compile_do_not_run(client, engineer, order_spec):
    add_row(engineer, order_spec, 3, "amount", ["total"], "pad", {"width": 3})
    add_row(engineer, order_spec, 4, "country", ["nowhere"])
    client.force_login(engineer)
    html = client.post(f"/mappings/{order_spec.pk}/tests/run/", **HTMX).content.decode()
    assert "The mapping does not compile, so no test ran." in html
    assert '<a href="#row-4">row 4</a>' in html


def test_mapping_tests_are_added_edited_and_deleted(client, engineer, order_spec):
    client.force_login(engineer)
    url = f"/mappings/{order_spec.pk}/tests/new/"
    html = client.get(url).content.decode()
    assert "Source (JSON)" in html and "source_text" not in html
    response = client.post(
        url,
        {"name": "bad", "source_payload": '{"number": ', "expected_payload": "{}", "notes": ""},
    )
    assert response.context["form"].errors["source_payload"] == [
        "Source (JSON) is not valid JSON: Expecting value (line 1, column 11)."
    ]
    response = client.post(
        url,
        {"name": "new order", "source_payload": "{}", "expected_payload": "{}", "notes": ""},
    )
    assert response.context["form"].errors["name"] == [
        "This mapping already has a test named 'new order'."
    ]
    response = client.post(
        url,
        {
            "name": "second",
            "source_payload": '{"number": "SO-9"}',
            "expected_payload": '{"id": "SO-9"}',
            "notes": "",
        },
    )
    assert response["Location"] == f"/mappings/{order_spec.pk}/#tests"
    test = MappingTest.objects.get(name="second")
    assert test.source_payload == {"number": "SO-9"}
    response = client.post(
        f"/mapping-tests/{test.pk}/edit/",
        {"name": "second", "source_payload": "[]", "expected_payload": "null", "notes": "n"},
    )
    test.refresh_from_db()
    assert (test.source_payload, test.expected_payload, test.notes) == ([], None, "n")
    assert (
        "Delete the mapping test second"
        in client.get(f"/mapping-tests/{test.pk}/delete/").content.decode()
    )
    client.post(f"/mapping-tests/{test.pk}/delete/")
    assert not MappingTest.objects.filter(pk=test.pk).exists()


def test_an_xml_source_takes_text(client, engineer, interface_a):
    spec = services.create_spec(
        engineer, MappingSpec(interface=interface_a, name="From XML", source_format="xml")
    )
    client.force_login(engineer)
    url = f"/mappings/{spec.pk}/tests/new/"
    assert "Source (XML)" in client.get(url).content.decode()
    client.post(
        url,
        {"name": "one", "source_text": "<Order><Id>1</Id></Order>", "expected_payload": "{}"},
    )
    assert MappingTest.objects.get(name="one").source_text == "<Order><Id>1</Id></Order>"


def test_tests_of_an_approved_version_are_frozen(client, engineer, lead, order_spec):
    spec = approve(order_spec, engineer, lead)
    client.force_login(engineer)
    test = spec.tests.get()
    response = client.post(
        f"/mapping-tests/{test.pk}/edit/",
        {"name": "renamed", "source_payload": "{}", "expected_payload": "{}"},
    )
    assert response.context["form"].non_field_errors() == [
        "INT-042 Orders to ERP v1 is approved and frozen; start a new draft from it to change it."
    ]
    assert MappingTest.objects.get(pk=test.pk).name == "new order"
    # Running them is still fine: reading never changes a frozen version.
    html = client.post(f"/mappings/{spec.pk}/tests/run/", **HTMX).content.decode()
    assert "1 of 1 passed" in html


@pytest.mark.parametrize("persona", ["viewer", "engineer_b"])
def test_mapping_tests_are_changed_by_the_owner_team_only(request, client, persona, order_spec):
    client.force_login(request.getfixturevalue(persona))
    test = order_spec.tests.get()
    assert client.get(f"/mappings/{order_spec.pk}/tests/new/").status_code == 403
    assert client.get(f"/mapping-tests/{test.pk}/edit/").status_code == 403
    assert client.post(f"/mapping-tests/{test.pk}/delete/").status_code == 403
    assert MappingTest.objects.filter(pk=test.pk).exists()
