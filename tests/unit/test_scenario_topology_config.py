"""The topology settings scenario files brought in, which plain `up --config` files have too: a registry's own
`callbackUrl` and extra `forms` in the catalog data format. Starts nothing."""
from __future__ import annotations

import pytest

from harness.config import ConfigError, RegistrySpec, config_from_dict, example_config

EXTRA = "5c1e3f1a-7d4b-4e8e-9f59-0d8f3b6a2c11"


def problems(data) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config_from_dict(data, source="t.yaml")
    return caught.value.problems


def test_a_callback_url_makes_a_registry_external():
    config = config_from_dict({"registries": [{"name": "mine", "callbackUrl": "https://reg.example.no/eprom"},
                                              {"name": "fake"}]})
    assert config.registries == [RegistrySpec("mine", "mine-key", None, "https://reg.example.no/eprom"),
                                 RegistrySpec("fake", "fake-key")]
    assert [r.is_fake for r in config.registries] == [False, True]


@pytest.mark.parametrize("url", ["ftp://x", "http://", "127.0.0.1:8080", "http://x/a?b=1", "http://x#f",
                                 "http://a b"])
def test_a_callback_url_must_be_an_http_base_url(url):
    [line] = problems({"registries": [{"name": "mine", "callbackUrl": url}]})
    assert line == (f"t.yaml: registries[0].callbackUrl: {url!r} is not an http:// or https:// base URL "
                    "(no query or fragment)")


def test_a_callback_url_needs_a_usable_port():
    [line] = problems({"registries": [{"name": "mine", "callbackUrl": "http://127.0.0.1:99999"}]})
    assert line == "t.yaml: registries[0].callbackUrl: has a port that is not a number from 1 to 65535"


def test_a_callback_url_with_credentials_is_refused():
    """The proxy sends no user name or password from a URL: every callback would have gone without them."""
    [line] = problems({"registries": [{"name": "mine", "callbackUrl": "http://me:pw@127.0.0.1:8080"}]})
    assert line == ("t.yaml: registries[0].callbackUrl: holds a user name or password (user:password@host), which "
                    "ePROX does not send: ePROM and the registries know it by its apiKey")


def test_extra_forms_are_kept_in_catalog_format():
    form = {"id": EXTRA, "name": "Hofte", "paperEnabled": True,
            "questions": [{"id": "q1", "text": "Smerte", "type": "number", "min": 0, "max": 10}]}
    config = config_from_dict({"forms": [form], "registries": [{"name": "a", "allowedForms": [EXTRA]}]})
    assert config.forms == [form]


def test_extra_forms_are_checked_by_schema_by_the_catalog_reader_and_against_the_catalog():
    found = problems({"forms": [
        {"id": "not-a-uuid", "name": "x"},
        {"id": EXTRA, "name": "Hofte", "questions": [{"id": "q", "text": "t", "type": "choice"}]},
        {"id": EXTRA.upper(), "name": "Hofte", "questions": [{"id": "q", "text": "t", "type": "number",
                                                               "min": 5, "max": 1}]},
        {"id": "1279fd55-3f22-4a7a-b4c5-84b582f88c54", "name": "RAND-12", "colour": "red"},
        {"id": "00000000-0000-4000-8000-0000000000aa", "name": "Mine", "owner": "registry-a"},
    ], "registries": [{"name": "a", "allowedForms": ["00000000-0000-4000-8000-000000000001"]}]})
    assert found == [
        "t.yaml: forms[0].id: 'not-a-uuid' is not a uuid",
        "t.yaml: forms[1].questions[0]: 'options' is required",
        f"t.yaml: forms[2].id: {EXTRA.upper()} is already the id of forms[1]",
        "t.yaml: forms[2].name: 'Hofte' is already the name of forms[1]",
        "t.yaml: forms[2].questions[0]: a number question needs integers min <= max",
        "t.yaml: forms[3]: unknown setting(s) 'colour'; allowed here: id, mustBeSigned, name, owner, "
        "paperEnabled, published, questions",
        "t.yaml: forms[3].id: 1279fd55-3f22-4a7a-b4c5-84b582f88c54 is already the id of the default catalog's form "
        "'Helsetilstand i dag (papir og digitalt)'",
        "t.yaml: forms[3].name: 'RAND-12' is already the name of a form of the default catalog",
        "t.yaml: forms[4].owner: 'registry-a' is not an ordering system at the fake ePROM: in a harness the only "
        "one is ePROX, named 'eprox'",
        "t.yaml: registries[0].allowedForms[0]: no form with id 00000000-0000-4000-8000-000000000001 in the catalog",
    ]


def test_the_example_config_mentions_the_new_settings():
    text = example_config()
    assert "callbackUrl" in text and "forms:" in text
