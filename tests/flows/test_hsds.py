"""`helpline resources export --hsds` and `import`: the directory as Open Referral HSDS 3.0, and back."""
from __future__ import annotations

import json
from datetime import date

import pytest
from click.testing import CliRunner

from bot.cli import main
from flows import hsds
from flows.resources import DEFAULT_PATH, ResourceDirectory

DELANO = "open-door-network-delano"


def run(*args):
    return CliRunner().invoke(main, ["resources", *args])


@pytest.fixture
def yaml_copy(tmp_path):
    path = tmp_path / "resources.yaml"
    path.write_text(DEFAULT_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    return path


@pytest.fixture
def exported(tmp_path):
    """The shipped directory exported, as a list of records to change and write back."""
    result = run("export", "--hsds", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    path = tmp_path / "out" / hsds.EXPORT_FILE
    return path, json.loads(path.read_text(encoding="utf-8"))


def by_name(records, name):
    return next(r for r in records if r["name"] == name)


def test_an_export_read_back_changes_nothing(exported, yaml_copy):
    path, records = exported
    assert len(records) == len(ResourceDirectory.load().usable())
    result = run("import", str(path), "--file", str(yaml_copy))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["0 added, 0 changed, 0 not in the import, 0 refused"]
    # And a folder of them reads the same.
    assert run("import", str(path.parent), "--file", str(yaml_copy)).output == result.output


def test_the_export_maps_each_fact_to_its_hsds_field(exported):
    _, records = exported
    delano = by_name(records, "Open Door Network")
    assert [(p["type"], p["number"]) for p in delano["phones"]] == [("voice", "(661) 327-1091")]
    assert delano["schedules"] == [{"id": delano["schedules"][0]["id"], "service_id": delano["id"],
                                    "description": "24 hours"}]
    address = delano["service_at_locations"][0]["location"]["addresses"][0]
    assert (address["address_1"], address["city"], address["postal_code"]) == (
        "Delano Family Justice Center, 1317 Main Street, Delano", "Delano", "")  # no ZIP in the source: none made up
    assert delano["assured_date"] == "2023-10-19"
    assert delano["metadata"][0]["field_name"] == "source" and "theshafterpress.com" in \
        delano["metadata"][0]["replacement_value"]
    nhtl = by_name(records, "National Human Trafficking Hotline (Polaris)")
    assert [(p["type"], p["number"]) for p in nhtl["phones"]] == [("voice", "1-888-373-7888"), ("text", "233733")]
    assert [lang["code"] for lang in nhtl["languages"]] == ["en", "es"] and "service_at_locations" not in nhtl
    safeline = by_name(records, "National Runaway Safeline")
    assert (safeline["minimum_age"], safeline["maximum_age"]) == (12, 21)
    assert safeline["eligibility_description"] == "ages 12-21 and their families"


def test_schema_failures_name_the_file_the_record_and_the_field(tmp_path, yaml_copy, exported):
    _, records = exported
    del records[0]["phones"][0]["number"]
    records[1]["status"] = "open"
    records[2]["service_at_locations"][0]["location"]["addresses"][0].pop("country")
    bad = tmp_path / "feed.json"
    bad.write_text(json.dumps(records), encoding="utf-8")
    before = yaml_copy.read_text(encoding="utf-8")
    result = run("import", str(bad), "--file", str(yaml_copy), "--write")
    assert result.exit_code == 2
    assert f"feed.json: record 1 ({records[0]['name']}): phones/0: 'number' is a required property" in result.output
    assert f"feed.json: record 2 ({records[1]['name']}): status: 'open' is not one of" in result.output
    assert (f"feed.json: record 3 ({records[2]['name']}): service_at_locations/0/location/addresses/0: 'country' "
            "is a required property") in result.output
    assert "3 schema error(s): nothing imported" in result.output
    assert yaml_copy.read_text(encoding="utf-8") == before
    (tmp_path / "broken.json").write_text("{not json", encoding="utf-8")
    broken = run("import", str(tmp_path / "broken.json"), "--file", str(yaml_copy))
    assert broken.exit_code == 2 and "broken.json: not readable as JSON" in broken.output


def test_an_import_reports_what_would_change_and_writes_only_when_asked(tmp_path, yaml_copy, exported):
    _, records = exported
    by_name(records, "Open Door Network")["phones"][0]["number"] = "(661) 327-1092"
    by_name(records, "Open Door Network")["assured_date"] = "2026-01-05"
    records = [r for r in records if r["name"] != "Women's Center High Desert"]
    records.append({"id": "0b6f5a52-6a7e-4bd4-9a55-0a0f1c3f2b11", "name": "Arvin Family Resource Center",
                    "status": "active", "phones": [{"id": "p1", "number": "(661) 555-0100", "type": "voice"}],
                    "metadata": [{"id": "m1", "last_action_date": "2026-01-04", "last_action_type": "verified",
                                  "field_name": "source", "previous_value": "",
                                  "replacement_value": "211kern.example/arvin", "updated_by": "211"}],
                    "assured_date": "2026-01-04"})
    feed = tmp_path / "feed.json"
    feed.write_text(json.dumps(records), encoding="utf-8")
    before = yaml_copy.read_text(encoding="utf-8")

    report = run("import", str(feed), "--file", str(yaml_copy))
    assert report.exit_code == 0, report.output
    assert report.output.splitlines() == [
        "added: arvin-family-resource-center (Arvin Family Resource Center)",
        f"changed: {DELANO}: phone: '(661) 327-1091' -> '(661) 327-1092'",
        f"changed: {DELANO}: verified_on: datetime.date(2023, 10, 19) -> datetime.date(2026, 1, 5)",
        "not in the import: womens-center-high-desert (kept; delete it from the YAML by hand if the service is gone)",
        "1 added, 1 changed, 1 not in the import, 0 refused",
    ]
    assert yaml_copy.read_text(encoding="utf-8") == before  # a report only

    written = run("import", str(feed), "--file", str(yaml_copy), "--write")
    assert written.exit_code == 0 and "written to" in written.output
    after = ResourceDirectory.load(yaml_copy)
    assert after.get(DELANO).phone == "(661) 327-1092" and after.get(DELANO).verified_on == date(2026, 1, 5)
    assert after.get(DELANO).hours_for("es") == "24 horas"  # the help line's own fields are kept
    assert after.get("womens-center-high-desert") is not None  # never deleted by an import
    new = after.get("arvin-family-resource-center")
    assert (new.phone, new.source, new.categories) == ("(661) 555-0100", "211kern.example/arvin", ())
    assert after.check().errors == []
    # Not offered until an operator gives it categories.
    assert any("arvin-family-resource-center: no categories" in w for w in after.check().warnings)
    again = run("import", str(feed), "--file", str(yaml_copy))
    assert "0 added, 0 changed, 1 not in the import, 0 refused" in again.output


def test_records_without_a_phone_or_an_address_or_written_wrong_are_refused(tmp_path, yaml_copy, exported):
    _, records = exported
    bare = {"id": "9d1c1d0e-3f7a-4a8e-8f7e-3c2b1a0d9e8f", "name": "Somewhere", "status": "active"}
    odd = {"id": "1e2d3c4b-5a69-4877-8695-a4b3c2d1e0f9", "name": "Odd Number", "status": "active",
           "phones": [{"id": "p2", "number": "661.555.0199", "type": "voice"}]}
    feed = tmp_path / "feed.json"
    feed.write_text(json.dumps(records + [bare, odd]), encoding="utf-8")
    result = run("import", str(feed), "--file", str(yaml_copy), "--write")
    n = len(records)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:2] == [
        f"refused: feed.json: record {n + 1} (Somewhere): no phone number and no street address: nothing a texter "
        "could use",
        f"refused: feed.json: record {n + 2} (Odd Number): malformed phone '661.555.0199' (write it as printed and "
        "quoted, e.g. \"(661) 327-1091\", \"1-800-799-7233\", \"988\")",
    ]
    assert "0 added, 0 changed, 0 not in the import, 2 refused" in result.output
    assert ResourceDirectory.load(yaml_copy).get("somewhere") is None


@pytest.mark.parametrize("content, said", [
    ("[" * 100_000 + "]" * 100_000, "nested too deep"),  # json's decoder recurses: a RecursionError, a traceback
    ('[{"id": "x", "name": "A", "status": "active", "minimum_age": NaN}]', "NaN is not JSON"),
    ('[{"id": "x", "name": "A", "status": "active", "maximum_age": Infinity}]', "Infinity is not JSON"),
])
def test_a_file_that_is_not_json_gets_a_clear_error_not_a_traceback(tmp_path, yaml_copy, content, said):
    feed = tmp_path / "feed.json"
    feed.write_text(content, encoding="utf-8")
    result = run("import", str(feed), "--file", str(yaml_copy), "--write")
    assert result.exit_code == 2 and not isinstance(result.exception, RecursionError), result.exception
    assert f"error: feed.json: not readable as JSON: {said}" in result.output
    assert yaml_copy.read_text(encoding="utf-8") == DEFAULT_PATH.read_text(encoding="utf-8")
