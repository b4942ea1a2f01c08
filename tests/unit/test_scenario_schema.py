"""Scenario files: the JSON Schema (which embeds the topology schema and the fake ePROM's patient contract),
building a scenario, and problems that name the file, the place in it and what is wrong. Starts nothing."""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from eprom_protocol.timefmt import parse_instant
from fake_eprom.patient_schema import PATIENT_SCHEMA
from harness.config import CONFIG_SCHEMA, RegistrySpec
from harness.scenario import SCENARIO_SCHEMA, ScenarioError, load_scenario, scenario_from_dict

RAND_12 = "1bc5f9f0-2607-49eb-94f0-6af955bbd79a"
PAPER_FORM = "1279fd55-3f22-4a7a-b4c5-84b582f88c54"
EXTRA_FORM = "5c1e3f1a-7d4b-4e8e-9f59-0d8f3b6a2c11"


def problems(tmp_path: Path, text: str, name: str = "scenario.yaml") -> list[str]:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert all(line.startswith(f"{path}: ") for line in caught.value.problems), caught.value.problems
    return [line[len(f"{path}: "):] for line in caught.value.problems]


MINIMAL = """\
patients:
  - {ref: kari, age: 70}
script:
  - {at: P0D, registry: registry-a, patient: kari, form: RAND-12}
"""


# --- the schema itself -----------------------------------------------------------------------------

def test_the_scenario_schema_is_a_valid_draft_2020_12_schema():
    Draft202012Validator.check_schema(SCENARIO_SCHEMA)
    assert SCENARIO_SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_the_topology_part_is_the_topology_schema_itself():
    embedded = SCENARIO_SCHEMA["$defs"]["topology"]
    assert embedded == {k: v for k, v in CONFIG_SCHEMA.items() if k != "$schema"}
    assert SCENARIO_SCHEMA["properties"]["topology"] == {"$ref": "#/$defs/topology"}


def test_the_patient_part_is_the_patient_contract_plus_a_ref():
    patient = SCENARIO_SCHEMA["$defs"]["patient"]
    assert list(patient["properties"])[0] == "ref" and "ref" in patient["required"]
    assert set(patient["properties"]) == {"ref", *PATIENT_SCHEMA["properties"]}
    # every field of the contract is there unchanged, except the places where a ref or a form name may stand
    widened = {"profile", "answer", "initiates"}
    for key, sub in PATIENT_SCHEMA["properties"].items():
        if key not in widened:
            assert patient["properties"][key] == sub, key


def test_a_contract_valid_patient_with_a_ref_is_scenario_valid():
    body = {"nationalId": "26670271527", "reachable": ["Helsenorge"], "answer": {"after": "P3D"},
            "behaviour": "answers", "profile": {"helsenorgeConsent": "full", "digitalMailbox": False}}
    assert Draft202012Validator(PATIENT_SCHEMA).is_valid(body)
    Draft202012Validator(SCENARIO_SCHEMA).validate({"patients": [{"ref": "p", **body}]})


# --- building ----------------------------------------------------------------------------------------

def test_a_minimal_scenario_builds_with_the_default_topology(tmp_path):
    path = tmp_path / "min.yaml"
    path.write_text(MINIMAL, encoding="utf-8")
    scenario = load_scenario(path)
    assert scenario.name == "min"
    assert [r.name for r in scenario.config.registries] == ["registry-a", "registry-b"]
    [step] = scenario.script
    assert (step.at, step.registry, step.patient, step.form_id, step.form_name) == (
        timedelta(0), "registry-a", "kari", RAND_12, "RAND-12")
    assert step.expires_after == timedelta(days=30)
    assert scenario.until == timedelta(0)  # no until: the last scripted order
    assert scenario.patients[0].fields == {"age": 70}


def test_forms_are_found_by_name_or_id_and_extra_forms_join_the_catalog():
    scenario = scenario_from_dict({
        "topology": {"forms": [{"id": EXTRA_FORM, "name": "Hofte 1 år", "questions": [
            {"id": "q", "text": "Smerte?", "type": "number", "min": 0, "max": 10}]}]},
        "patients": [{"ref": "a"}],
        "script": [{"at": "P1D", "registry": "registry-a", "patient": "a", "form": "Hofte 1 år"},
                   {"at": "P2D", "registry": "registry-b", "patient": "a", "form": PAPER_FORM.upper(),
                    "metadata": {"RELEVANT_DATE": "2025-01-01"}, "expiryDate": "2025-03-01",
                    "distributionRule": "BasicOrPaper"}],
        "until": "P1W",
        "expect": [{"registry": "registry-a", "patient": "a", "form": EXTRA_FORM, "statuses": ["Ordered"]}],
    })
    assert [s.form_id for s in scenario.script] == [EXTRA_FORM, PAPER_FORM]
    assert scenario.expectations[0].form_name == "Hofte 1 år"
    assert scenario.until == timedelta(weeks=1)
    body = scenario.script[1].body(scenario.config.start, {"a": "26670271527"})
    assert body == {"formId": PAPER_FORM, "nationalId": "26670271527", "expiryDate": "2025-03-01",
                    "metadata": json.dumps({"RELEVANT_DATE": "2025-01-01"}), "distributionRule": "BasicOrPaper"}
    first = scenario.script[0].body(scenario.config.start, {"a": "26670271527"})
    assert first["expiryDate"] == (scenario.config.start + timedelta(days=30)).isoformat()


def test_on_behalf_of_names_the_child_by_ref():
    scenario = scenario_from_dict({
        "patients": [{"ref": "mor", "age": 40}, {"ref": "barn", "age": 8, "profile": {"representedBy": "mor"}}],
        "script": [{"at": "P0D", "registry": "registry-a", "patient": "mor", "onBehalfOf": "barn", "form": "RAND-12"}],
    })
    body = scenario.script[0].body(scenario.config.start, {"mor": "26670271527", "barn": "20701698526"})
    assert body["nationalId"] == "26670271527" and body["onBehalfOfNationalId"] == "20701698526"


def test_a_registry_with_a_callback_url_is_part_of_the_topology():
    scenario = scenario_from_dict({"topology": {"registries": [
        {"name": "mine", "apiKey": "k1", "callbackUrl": "http://127.0.0.1:8080/base"}, {"name": "fake"}]}})
    assert scenario.config.registries == [RegistrySpec("mine", "k1", None, "http://127.0.0.1:8080/base"),
                                          RegistrySpec("fake", "fake-key")]


# --- problems ------------------------------------------------------------------------------------------

def test_schema_problems_name_the_place_and_what_is_wrong(tmp_path):
    found = problems(tmp_path, """\
colour: blue
topology:
  registries: [{name: 'a b'}]
  eprom: {statusDelay: P1M}
patients:
  - ref: kari
    answer: {after: P3X}
    profile: {representedBy: "123"}
  - {ref: "9x"}
  - {ref: ola, behaviour: sleeps}
script:
  - {at: soon, registry: registry-a, patient: kari, form: RAND-12, distributionRule: Paper}
  - {registry: registry-a, patient: kari, form: RAND-12}
until: 3 days
expect:
  - {patient: kari, statuses: [Done]}
""")
    expected = [
        "(top level): unknown setting(s) 'colour'; allowed here: description, expect, name, patients, script, "
        "topology, until",
        "topology.eprom.statusDelay: 'P1M': use days, hours, minutes or seconds, not years or months",
        "topology.registries[0].name: 'a b' is not a usable name",
        "patients[0].answer.after: 'P3X' is not an ISO-8601 duration of weeks, days, hours, minutes or seconds",
        "patients[0].profile.representedBy: '123' is not a national id (11 digits) or the ref of a patient in this "
        "file",
        "patients[1].ref: '9x' is not a usable ref",
        "patients[2].behaviour: 'sleeps' is not one of: answers, never,",
        "script[0].at: 'soon' is not an ISO-8601 duration",
        "script[0].distributionRule: 'Paper' is not one of: Basic,",
        "script[1]: 'at' is required",
        "until: '3 days' is not an ISO-8601 duration",
        "expect[0].statuses[0]: 'Done' is not one of: Completed, Expired, Ordered",
    ]
    for text in expected:
        assert any(line.startswith(text) for line in found), (text, found)


def test_problems_come_in_the_order_of_the_file(tmp_path):
    found = problems(tmp_path, """\
expect: [{patient: nobody, epromOrders: 1}]
script: [{at: P0D, registry: nowhere, patient: kari, form: RAND-12}]
patients: [{ref: kari}, {ref: kari}]
""")
    assert [line.split(":")[0] for line in found] == ["patients[1].ref", "script[0].registry", "expect[0].patient"]


def test_cross_references_are_checked(tmp_path):
    found = problems(tmp_path, """\
topology:
  registries: [{name: a}, {name: mine, callbackUrl: "http://127.0.0.1:9"}]
patients:
  - {ref: kari, nationalId: "26670271527", profile: {representedBy: kari}}
  - {ref: kari}
  - {ref: ola, nationalId: "26670271527", profile: {representedBy: mor}}
  - {ref: p1, profile: {representedBy: p2}}
  - ref: p2
    answer: {after: P1D, filledOutBy: {nationalId: p1, actType: Fullmakt}}
    initiates: [{formId: Nope, after: P1D}]
script:
  - {at: P0D, registry: c, patient: nobody, form: NoSuchForm, expiryDate: soon, expiresAfter: P1D}
  - {at: P40D, registry: a, patient: kari, form: RAND-12, onBehalfOf: kari}
until: P30D
expect:
  - {registry: mine, patient: kari, statuses: [Ordered]}
  - {patient: kari, statuses: [Ordered]}
  - {patient: kari}
  - {registry: a, patient: kari, epromOrders: 1}
  - {registry: nope, patient: kari, form: Nope, orders: 1}
""")
    text = "\n".join(found)
    for line in [
        "patients[0].profile.representedBy: 'kari' is this patient itself",
        "patients[1].ref: 'kari' is already the ref of patients[0]",
        "patients[2].nationalId: is already the national id of patients[0]",
        "patients[2].profile.representedBy: no patient with ref 'mor'; the patients are: kari, ola, p1, p2",
        "patients[3]: patients refer to each other in a circle (p1 -> p2 -> p1): give one of them a nationalId",
        "patients[4].initiates[0].formId: no form named 'Nope' (or with that id) in the catalog; it has: 'RAND-12',",
        "script[0]: give expiryDate or expiresAfter, not both",
        "script[0].expiryDate: 'soon' is not an ISO-8601 date or date-time",
        "script[0].form: no form named 'NoSuchForm'",
        "script[0].patient: no patient with ref 'nobody'",
        "script[0].registry: no registry named 'c' in the topology; it has: a, mine",
        "script[1].at: P40D is after until (P30D): it would never run",
        "script[1].onBehalfOf: is the patient the order goes to; leave it out",
        "expect[0].registry: 'mine' has a callbackUrl: the harness cannot see what your own system received",
        "expect[1]: statuses need a registry",
        "expect[2]: says nothing to check",
        "expect[3]: epromOrders count ePROM's orders for the patient, whoever ordered them",
        "expect[4].form: no form named 'Nope'",
        "expect[4].registry: no registry named 'nope'",
    ]:
        assert line in text, (line, text)


def test_topology_rules_apply_inside_a_scenario(tmp_path):
    found = problems(tmp_path, """\
topology:
  eprom: {apiKey: same}
  registries: [{name: a, apiKey: same}, {name: proxy}]
  forms: [{id: 1bc5f9f0-2607-49eb-94f0-6af955bbd79a, name: RAND-12}]
""")
    assert found == [
        "topology.forms[0].id: 1bc5f9f0-2607-49eb-94f0-6af955bbd79a is already the id of the default catalog's "
        "form 'RAND-12'",
        "topology.forms[0].name: 'RAND-12' is already the name of a form of the default catalog",
        "topology.registries[0].apiKey: must differ from eprom.apiKey (ePROX's own key at ePROM)",
        "topology.registries[1].name: 'proxy' is reserved for the harness's own servers",
    ]


def test_unreadable_files_say_so(tmp_path):
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ScenarioError, match=f"{missing}: cannot read the file"):
        load_scenario(missing)
    [line] = problems(tmp_path, "patients: [\n  {ref: a\n", name="broken.yaml")
    assert line.startswith("not valid YAML: line ")
    [line] = problems(tmp_path, "[1, 2]")
    assert line == "(top level): must be a mapping, not list ([1, 2])"


def test_a_key_given_twice_is_a_problem_not_a_silent_choice(tmp_path):
    """YAML and json keep the last of two equal keys: a second `expect:` dropped the first one's checks, and a
    scenario that should have failed passed (found by a helper's hunt)."""
    text = MINIMAL + "expect:\n  - {registry: r, patient: kari, statuses: [Ordered, Completed]}\nexpect: []\n"
    assert problems(tmp_path, text) == [f"line {text.count(chr(10))}: `expect` is given twice (only one may be)"]
    assert problems(tmp_path, '{"until": "P1D", "until": "P2D"}', name="twice.json") == [
        "`until` is given twice (only one may be)"]
    assert problems(tmp_path, "patients:\n  - {ref: a, ref: b}\n") == [
        "line 2: `ref` is given twice (only one may be)"]


def test_a_value_of_the_wrong_type_where_null_is_allowed_says_both(tmp_path):
    [line] = problems(tmp_path, "patients: [{ref: a, answer: 5}]")
    assert line == "patients[0].answer: must be a mapping or null, not integer (5)"


def test_scripted_orders_eprox_refuses_whoever_ordered_first_are_problems_of_the_file(tmp_path):
    """They always failed `scenario run` while `scenario check` called the file usable (found by a helper's
    hunt). What depends on the catalog stays out: a linked order is not checked against it."""
    text = """\
patients: [{ref: a}, {ref: kid, birthDate: "2015-01-01"}]
script:
  - {at: P0D, registry: registry-a, patient: a, form: RAND-12, metadata: {RELEVANT_DATE: "yesterday"}}
  - {at: P0D, registry: registry-a, patient: a, form: RAND-12, metadata: {CREATE_NEW_ORDER: "maybe"}}
  - {at: P0D, registry: registry-a, patient: a, form: RAND-12, distributionRule: NoDistribution, mustBeSigned: true}
  - {at: P0D, registry: registry-a, patient: a, onBehalfOf: kid, form: RAND-12, mustBeSigned: true}
  - {at: P1D, registry: registry-a, patient: a, form: RAND-12, expiryDate: "2025-01-06"}
  - {at: P0D, registry: registry-a, patient: a, form: RAND-12, distributionRule: PaperOnly}
  - {at: P0D, registry: registry-a, patient: a, form: RAND-12, metadata: {CREATE_NEW_ORDER: true, age: 70}}
"""
    found = problems(tmp_path, text)
    assert [line.split(": ", 1)[0] for line in found] == [f"script[{i}]" for i in range(5)]
    assert all(": ePROX would refuse this order: " in line for line in found)
    assert "metadata.RELEVANT_DATE: 'yesterday' is not an ISO-8601 date" in found[0]
    assert "metadata.CREATE_NEW_ORDER: must be true or false" in found[1]
    assert "DistributionRule = 'NoDistribution'" in found[2]
    assert "on behalf of someone" in found[3]
    assert "expiryDate: '2025-01-06' is not in the future" in found[4]


def test_durations_and_start_a_run_could_not_hold_are_problems_of_the_file(tmp_path):
    """Each was an OverflowError traceback (exit 1), or passed the check and then failed the run: an order
    with no expiry date, a 500 from the fake ePROM, a crash of its due work (found by a helper's hunt)."""
    topology = 'topology: {start: "9999-12-01T00:00:00Z", eprom: {statusDelay: P3000000D}}\n'
    assert sorted(problems(tmp_path, topology)) == [
        "topology.eprom.statusDelay: 'P3000000D' is too long: at most 100 years (P36525D)",
        "topology.start: must be in the years 1900 to 2039 (Norwegian time): the patients are born before it, and national ids "
        "tell births from 1854 to 2039 only",
    ]
    script = """\
patients: [{ref: a}]
script:
  - {at: P999999999D, registry: registry-a, patient: a, form: RAND-12, expiresAfter: P3000000D}
until: PT99999999999999999999S
"""
    assert sorted(problems(tmp_path, script)) == sorted([
        "script[0].expiresAfter: 'P3000000D' is too long: at most 100 years (P36525D)",
        "script[0].at: 'P999999999D' is too long: at most 100 years (P36525D)",
        "until: 'PT99999999999999999999S' is too long: at most 100 years (P36525D)",
    ])


@pytest.mark.parametrize("start, usable", [("1900-01-01T00:30:00", True), ("1899-12-31T23:30:00", False),
                                           ("2039-12-31T23:30:00", True), ("2040-01-01T00:30:00", False)])
def test_the_start_years_are_counted_as_written_in_norwegian_time(tmp_path, start, usable):
    """The bound took the year in UTC: 00:30 on 1 January 1900 in Oslo was refused, 2040 taken."""
    text = f'topology: {{start: "{start}"}}\n'
    if usable:
        path = tmp_path / "scenario.yaml"
        path.write_text(text, encoding="utf-8")
        assert load_scenario(path).config.start == parse_instant(start, "start")
    else:
        assert problems(tmp_path, text)[0].startswith("topology.start: must be in the years 1900 to 2039")


def test_a_scripted_order_for_a_form_its_registry_may_not_order_is_a_problem(tmp_path):
    text = """\
topology: {registries: [{name: r1, allowedForms: [1BC5F9F0-2607-49EB-94F0-6AF955BBD79A]}, {name: r2}]}
patients: [{ref: a}]
script:
  - {at: P0D, registry: r1, patient: a, form: RAND-12}
  - {at: P0D, registry: r2, patient: a, form: "Helsetilstand i dag (papir og digitalt)"}
  - {at: P0D, registry: r1, patient: a, form: "Helsetilstand i dag (papir og digitalt)"}
"""
    assert problems(tmp_path, text) == [
        "script[2].form: 'r1' may not order 'Helsetilstand i dag (papir og digitalt)' (not in its allowedForms): ePROX "
        "would refuse this order: No form with id='1279fd55-3f22-4a7a-b4c5-84b582f88c54' exists"]
