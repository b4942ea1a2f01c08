"""The form catalog (shipped YAML data) and the configuration's checks."""
from __future__ import annotations

from datetime import timedelta

from importlib import resources

import pytest
import yaml
from jsonschema import Draft202012Validator

from fake_eprom.config import EpromConfig, OrderingSystem
from fake_eprom.forms import FORM_SCHEMA, CatalogError, Form, Question, default_catalog, load_catalog, parse_catalog


def test_the_default_catalog_has_what_the_spec_requires():
    forms = default_catalog()
    rand12 = next(f for f in forms if f.id == "1bc5f9f0-2607-49eb-94f0-6af955bbd79a")
    assert rand12.name == "RAND-12" and rand12.published and not rand12.must_be_signed
    assert len(rand12.questions) == 12 and all(q.type == "choice" and len(q.options) >= 2 for q in rand12.questions)
    assert any(not f.published for f in forms)
    assert any(f.published and f.paper_enabled for f in forms)
    assert any(f.published and f.must_be_signed for f in forms)
    kinds = {q.type for f in forms for q in f.questions}
    assert kinds == {"choice", "number", "text"}
    assert all(f.questions for f in forms)


def test_summary_is_what_the_ready_file_lists():
    assert default_catalog()[0].summary() == {"id": "1bc5f9f0-2607-49eb-94f0-6af955bbd79a", "name": "RAND-12",
                                              "published": True, "paperEnabled": False, "mustBeSigned": False}


def test_default_catalog_is_a_fresh_list_each_time():
    first = default_catalog()
    first.clear()
    assert len(default_catalog()) >= 4


def test_a_catalog_file_with_a_key_given_twice_is_refused(tmp_path):
    """YAML would keep the second `published:` and drop the first unnoticed."""
    path = tmp_path / "forms.yaml"
    path.write_text("forms:\n  - {id: 6aadfdb7-c038-4a11-8b4a-4e6c233701ff, name: A, published: false, published: true}\n",
                    encoding="utf-8")
    with pytest.raises(CatalogError, match=r"forms.yaml: line 2: `published` is given twice"):
        load_catalog(path)


def test_a_catalog_file_that_is_not_yaml_is_one_line_by_line_and_column(tmp_path):
    """PyYAML's own message runs over several lines and quotes the broken line."""
    path = tmp_path / "forms.yaml"
    path.write_text('forms:\n  - {id: 6aadfdb7-c038-4a11-8b4a-4e6c233701ff, name: "Smerte\n', encoding="utf-8")
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    assert str(caught.value).startswith(f"{path}: not valid YAML: line 3 column 1: ")
    assert "\n" not in str(caught.value) and "Smerte" not in str(caught.value)


def test_load_catalog_from_a_file(tmp_path):
    path = tmp_path / "forms.yaml"
    path.write_text(yaml.safe_dump({"forms": [{
        "id": "6AADFDB7-C038-4A11-8B4A-4E6C233701FF", "name": "Smerte", "paperEnabled": True,
        "questions": [{"id": "nrs", "text": "Smerte nå (0-10)?", "type": "number", "min": 0, "max": 10}]}]}),
        encoding="utf-8")
    [form] = load_catalog(path)
    assert form == Form("6aadfdb7-c038-4a11-8b4a-4e6c233701ff", "Smerte", True, True, False,
                        (Question("nrs", "Smerte nå (0-10)?", "number", min=0, max=10),))


#: Catalogs the reader refuses, with what its message says. The ones marked `schema` are wrong in a way
#: FORM_SCHEMA can state (the harness checks extra forms with it), the others only in ways it cannot.
BAD_CATALOGS = [
    ([], "expected a mapping with a list under 'forms'"),
    ({"forms": [{"id": "x", "name": "A"}]}, "id 'x' is not a uuid"),
    ({"forms": [{"id": "6aadfdb7-c038-4a11-8b4a-4e6c233701ff"}]}, "name is required"),
    ({"forms": [{"id": "6aadfdb7-c038-4a11-8b4a-4e6c233701ff", "name": "A", "published": "yes"}]},
     "published must be true or false"),
    ({"forms": [{"id": "6aadfdb7-c038-4a11-8b4a-4e6c233701ff", "name": "A", "colour": "red"}]},
     "unknown key(s) colour"),
    ({"forms": [{"id": "6aadfdb7-c038-4a11-8b4a-4e6c233701ff", "name": "A"},
                {"id": "6aadfdb7-c038-4a11-8b4a-4e6c233701ff", "name": "B"}]}, "appears twice"),
    ({"forms": [{"id": "6aadfdb7-c038-4a11-8b4a-4e6c233701ff", "name": "A",
                 "questions": [{"id": "q", "text": "?", "type": "slider"}]}]}, "type must be one of"),
    ({"forms": [{"id": "6aadfdb7-c038-4a11-8b4a-4e6c233701ff", "name": "A",
                 "questions": [{"id": "q", "text": "?", "type": "choice"}]}]}, "needs options"),
    ({"forms": [{"id": "6aadfdb7-c038-4a11-8b4a-4e6c233701ff", "name": "A",
                 "questions": [{"id": "q", "text": "?", "type": "number", "min": 5, "max": 1}]}]}, "min <= max"),
    ({"forms": [{"id": "6aadfdb7-c038-4a11-8b4a-4e6c233701ff", "name": "A",
                 "questions": [{"id": "q", "text": "?", "type": "text"}]}]}, "example answers"),
    ({"forms": [{"id": "6aadfdb7-c038-4a11-8b4a-4e6c233701ff", "name": "A",
                 "questions": [{"id": "q", "text": "?", "type": "text", "examples": ["a"]},
                               {"id": "q", "text": "?", "type": "text", "examples": ["b"]}]}]}, "unique"),
]
NOT_FOR_A_SCHEMA = ("expected a mapping", "appears twice", "min <= max", "unique")


@pytest.mark.parametrize("data, text", BAD_CATALOGS)
def test_bad_catalogs_are_refused_clearly(data, text):
    with pytest.raises(CatalogError) as err:
        parse_catalog(data, source="test.yaml")
    assert text in str(err.value) and str(err.value).startswith("test.yaml")


def test_the_form_schema_describes_what_the_reader_reads():
    """The catalog data format is stated by FORM_SCHEMA and read by parse_catalog, side by side in forms.py:
    the shipped catalog fits the schema, and every form the reader refuses for its shape the schema refuses."""
    validator = Draft202012Validator(FORM_SCHEMA)
    text = resources.files("fake_eprom").joinpath("catalog/default_catalog.yaml").read_text(encoding="utf-8")
    for form in yaml.safe_load(text)["forms"]:
        assert list(validator.iter_errors(form)) == [], form["name"]
    shaped = [(data, why) for data, why in BAD_CATALOGS if not any(word in why for word in NOT_FOR_A_SCHEMA)]
    assert len(shaped) == 7
    for data, why in shaped:
        assert not validator.is_valid(data["forms"][-1]), why


def test_config_uses_its_own_forms_when_given(make_sim):
    only = Form("6aadfdb7-c038-4a11-8b4a-4e6c233701ff", "Eget skjema",
                questions=(Question("q", "?", "text", examples=("ja",)),))
    sim = make_sim(forms=[only])
    assert sim.client.get("/_sim/forms").get_json() == [only.summary()]
    assert sim.order(formId=only.id).status_code == 200
    assert sim.order().get_json() == {"message": "No form with id='1bc5f9f0-2607-49eb-94f0-6af955bbd79a' exists"}


@pytest.mark.parametrize("make, text", [
    (lambda: EpromConfig([], population="closed"), "population must be one of open, strict"),
    (lambda: EpromConfig([], status_delay=timedelta(seconds=-1)), "status_delay must not be negative"),
    (lambda: EpromConfig([OrderingSystem("a", "k", "http://a"), OrderingSystem("b", "k", "http://b")]),
     "distinct api_keys"),
    (lambda: EpromConfig([OrderingSystem("a", "k1", "http://a"), OrderingSystem("a", "k2", "http://b")]),
     "distinct names"),
    (lambda: OrderingSystem("a", "k", "http://a", channel_format="text"), "channel_format must be one of"),
    (lambda: OrderingSystem("a", "", "http://a"), "needs an api_key"),
])
def test_bad_configuration_is_refused(make, text):
    with pytest.raises(ValueError) as err:
        make()
    assert text in str(err.value)


def test_callback_url_joins_base_and_path():
    assert OrderingSystem("a", "k", "http://x:1/base/").callback_url == "http://x:1/base/api/PromsFormOrder"
    assert OrderingSystem("a", "k", "http://x:1").callback_url == "http://x:1/api/PromsFormOrder"
