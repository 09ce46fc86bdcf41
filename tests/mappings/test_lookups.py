"""Lookup tables: CSV import validated whole first, saved in one transaction, used by rules."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from apps.core.models import AuditEntry
from apps.mappings import engine
from apps.mappings.lookups import import_lookup_csv
from apps.mappings.models import FieldRule, LookupEntry, LookupTable, MappingSpec

pytestmark = pytest.mark.django_db


@pytest.fixture
def countries(team_a):
    table = LookupTable.objects.create(name="countries", owner_team=team_a)
    LookupEntry.objects.create(table=table, key="XX", value="old")
    return table


def entries(table):
    return dict(table.entries.values_list("key", "value"))


def test_a_csv_replaces_the_entries(countries, engineer):
    data = "\ufeffValue,Key,Notes\nGermany,DE,x\nFrance,FR,\n".encode()
    assert import_lookup_csv(countries, data, actor=engineer) == 2
    assert entries(countries) == {"DE": "Germany", "FR": "France"}
    entry = AuditEntry.objects.get(object_id=str(countries.pk), action="update")
    assert (entry.actor, entry.changes) == (engineer, {"entries": [1, 2]})


def test_importing_the_same_file_twice_gives_the_same_table(countries):
    data = b"key,value,notes\nDE,Germany,x\n"
    import_lookup_csv(countries, data)
    import_lookup_csv(countries, data)
    assert entries(countries) == {"DE": "Germany"}


@pytest.mark.parametrize(
    "data, messages",
    [
        (
            b"code,name\nDE,Germany\n",
            ["Line 1: the header needs the columns key and value; missing: key, value."],
        ),
        (b"key\nDE\n", ["Line 1: the header needs the columns key and value; missing: value."]),
        (
            b"key,value\nDE,Germany\n,Nowhere\nFR,France\nDE,Deutschland\nAT\n",
            [
                "Line 3: the key is empty.",
                "Line 5: the key 'DE' repeats line 2.",
                "Line 6: 1 cells; the key and value columns are missing.",
            ],
        ),
        (
            b"key,value\nDE,Deutschland\nAT,\xd6sterreich\n",
            ["The file is not UTF-8 text: byte 0xd6 on line 3 (save it as UTF-8)."],
        ),
        (
            b"key,value\n" + b"K," + b"v" * 1001 + b"\n",
            ["Line 2: the value is longer than 1000 characters."],
        ),
        (b"", ["The file is empty; it needs a header row with key and value."]),
        (b'key,value\nDE,"open\n', ["Line 2: unexpected end of data."]),
        (b"\x00\x01binary", ["The file holds NUL characters; it is not a CSV text file."]),
    ],
)
def test_a_bad_file_changes_nothing_and_names_its_lines(countries, data, messages):
    with pytest.raises(ValidationError) as info:
        import_lookup_csv(countries, data)
    assert info.value.messages == messages
    assert entries(countries) == {"XX": "old"}
    assert not AuditEntry.objects.filter(object_id=str(countries.pk)).exists()


def test_a_file_with_too_many_rows_is_refused_before_anything_is_saved(countries):
    data = b"key,value\n" + b"".join(b"k%d,v\n" % n for n in range(100_001))
    with pytest.raises(ValidationError) as info:
        import_lookup_csv(countries, data)
    assert info.value.messages == ["The file has more than 100,000 rows."]
    assert entries(countries) == {"XX": "old"}


def test_viewers_and_other_teams_cannot_import(countries, viewer, engineer_b):
    for user in (viewer, engineer_b):
        with pytest.raises(PermissionDenied):
            import_lookup_csv(countries, b"key,value\nDE,Germany\n", actor=user)
    assert entries(countries) == {"XX": "old"}


def test_an_estate_wide_table_is_changed_by_admins_only(engineer, admin_user):
    table = LookupTable.objects.create(name="currencies")
    with pytest.raises(PermissionDenied):
        import_lookup_csv(table, b"key,value\nEUR,Euro\n", actor=engineer)
    import_lookup_csv(table, b"key,value\nEUR,Euro\n", actor=admin_user)
    assert entries(table) == {"EUR": "Euro"}


def test_compiled_specs_read_lookup_tables_once(countries, interface_a, django_assert_num_queries):
    import_lookup_csv(countries, b"key,value\nDE,Germany\n")
    spec = MappingSpec.objects.create(interface=interface_a, name="m")
    FieldRule.objects.create(
        spec=spec,
        position=1,
        target_path="country",
        source_paths=["cc"],
        kind="lookup",
        params={"table": "countries"},
    )
    FieldRule.objects.create(
        spec=spec,
        position=2,
        target_path="region",
        source_paths=["rc"],
        kind="lookup",
        params={"table": "countries", "default": "n/a"},
    )
    # rows, lookup tables, lookup entries
    with django_assert_num_queries(3):
        compiled = engine.compile_spec(spec)
    output, problems = compiled.transform({"cc": "DE", "rc": "ZZ"})
    assert (output, problems) == ({"country": "Germany", "region": "n/a"}, [])
    output, problems = compiled.transform({"cc": "ZZ"})
    assert [str(p) for p in problems] == [
        "row 1, country: 'ZZ' is not in the lookup table 'countries', and the rule has no default"
    ]
