"""POST /api/v2/formorder: every refusal, with the exact text (SPEC §1), and that a refusal changes nothing."""
from __future__ import annotations

import pytest

from eprom_protocol import messages


def message(response) -> str:
    body = response.get_json()
    assert isinstance(body, dict) and set(body) == {"message"}, body
    return body["message"]


def test_missing_authorization_header_is_401(sim):
    response = sim.order(headers={})
    assert response.status_code == 401
    assert message(response) == messages.MISSING_AUTHORIZATION


@pytest.mark.parametrize("header", ["Bearer key-eprox", "Basic ", "key-eprox"])
def test_authorization_that_is_not_basic_with_a_key_is_401(sim, header):
    response = sim.order(headers={"Authorization": header})
    assert response.status_code == 401
    assert message(response) == messages.MISSING_AUTHORIZATION


def test_unknown_api_key(sim):
    response = sim.order(key="not-a-key")
    assert response.status_code == 400
    assert message(response) == "apiKey 'not-a-key' doesn't exists"


def test_the_api_key_is_checked_before_the_body(sim):
    response = sim.order("this is not json", key="not-a-key")
    assert message(response) == "apiKey 'not-a-key' doesn't exists"


@pytest.mark.parametrize("raw, text", [
    ("this is not json", messages.body_not_json("Expecting value: line 1 column 1 (char 0)")),
    ("", messages.body_not_json("Expecting value: line 1 column 1 (char 0)")),
    ("[1, 2]", messages.BODY_NOT_OBJECT),
    ("null", messages.BODY_NOT_OBJECT),
    ("[" * 100_000, messages.body_not_json("nested too deeply (at most 64 levels)")),
    ('{"formId": NaN}', messages.body_not_json("NaN is not a JSON value")),
])
def test_a_body_that_is_not_a_json_object(sim, raw, text):
    response = sim.order(raw)
    assert response.status_code == 400
    assert message(response) == text


@pytest.mark.parametrize("missing", ["formId", "nationalId", "expiryDate"])
def test_required_fields(sim, ids, missing):
    body = {"formId": ids.RAND_12, "nationalId": ids.GUIDE_PATIENT, "expiryDate": "2025-01-20"}
    del body[missing]
    response = sim.order(body)
    assert response.status_code == 400
    assert message(response) == f"{missing}: is required"


@pytest.mark.parametrize("fields, text", [
    ({"formId": "RAND-12"}, "formId: 'RAND-12' is not a valid uuid"),
    ({"nationalId": 26723916517}, "nationalId: must be of type string, not integer"),
    ({"testMode": "yes"}, "testMode: must be of type boolean or null, not string"),
    ({"metadata": {"age": 76}}, "metadata: must be of type string or null, not object"),
    ({"distributionRule": "Sometimes"},
     "distributionRule: 'Sometimes' is not a valid DistributionRule; expected one of: 0 Basic, 1 AllowUnsecure, "
     "2 NoDistribution, 3 BasicOrPaper, 4 AllowUnsecureOrPaper, 5 PaperOnly, 6 HelsenorgeOnly, "
     "7 DigitalMailboxOnly, 8 UnsecureOnly"),
    ({"distributionRule": 9}, "distributionRule: 9 is not a valid DistributionRule; expected one of: 0 Basic, "
     "1 AllowUnsecure, 2 NoDistribution, 3 BasicOrPaper, 4 AllowUnsecureOrPaper, 5 PaperOnly, 6 HelsenorgeOnly, "
     "7 DigitalMailboxOnly, 8 UnsecureOnly"),
])
def test_wrong_types_and_values(sim, fields, text):
    response = sim.order(**fields)
    assert response.status_code == 400
    assert message(response) == text


@pytest.mark.parametrize("value, why", [
    ("123", "it must be exactly 11 digits"),
    ("2672391651a", "it must be exactly 11 digits"),
    ("26723916518", "the check digits are wrong"),
])
def test_malformed_national_id(sim, value, why):
    response = sim.order(nationalId=value)
    assert response.status_code == 400
    assert message(response) == messages.malformed_national_id("nationalId", why)


def test_fh_number_is_refused_with_the_documented_text(sim):
    response = sim.order(nationalId="81234567890")
    assert response.status_code == 400
    assert message(response) == ("nationalId: FH-nummer is not supported as national ID. The national ID must be "
                                 "either Norsk fødselsnummer or D-nummer.")


def test_h_number_is_refused_with_the_documented_text(sim, ids):
    response = sim.order(nationalId=ids.H_NUMBER)
    assert response.status_code == 400
    assert message(response) == ("nationalId: H-nummer is not supported as national ID. The national ID must be "
                                 "either Norsk fødselsnummer or D-nummer.")


def test_on_behalf_of_national_id_is_checked_too(sim, ids):
    assert message(sim.order(onBehalfOfNationalId="123")) == messages.malformed_national_id(
        "onBehalfOfNationalId", "it must be exactly 11 digits")
    assert message(sim.order(onBehalfOfNationalId=ids.H_NUMBER)) == (
        "onBehalfOfNationalId: H-nummer is not supported as national ID. The national ID must be either Norsk "
        "fødselsnummer or D-nummer.")  # it said nationalId, which was valid
    assert message(sim.order(onBehalfOfNationalId="80000000000")) == (
        "onBehalfOfNationalId: FH-nummer is not supported as national ID. The national ID must be either Norsk "
        "fødselsnummer or D-nummer.")


@pytest.mark.parametrize("value", ["tomorrow", "2025-13-01", "20.01.2025", ""])
def test_unparsable_expiry_date(sim, value):
    response = sim.order(expiryDate=value)
    assert response.status_code == 400
    assert message(response).startswith("expiryDate: ")


@pytest.mark.parametrize("value", ["2025-01-01", "2025-01-06T09:00:00", "2025-01-06T08:00:00Z"])
def test_expiry_date_not_in_the_future_of_the_simulated_clock(sim, value):
    # the clock says 2025-01-06T08:00:00Z, which is 09:00 in Oslo
    response = sim.order(expiryDate=value)
    assert response.status_code == 400
    assert message(response) == (f"expiryDate: {value!r} is not in the future "
                                 f"(it is now 2025-01-06T08:00:00+00:00)")


def test_expiry_date_a_second_ahead_is_fine(sim):
    assert sim.order(expiryDate="2025-01-06T08:00:01Z").status_code == 200


def test_unknown_form(sim):
    response = sim.order(formId="ABCDEF00-2607-49EB-94F0-6AF955BBD79A")
    assert response.status_code == 400
    assert message(response) == "No form with id='ABCDEF00-2607-49EB-94F0-6AF955BBD79A' exists"


def test_form_id_is_matched_whatever_its_case(sim, ids):
    assert sim.order(formId=ids.RAND_12.upper()).status_code == 200


def test_unpublished_form(sim, ids):
    response = sim.order(formId=ids.UNPUBLISHED_FORM)
    assert response.status_code == 400
    assert message(response) == "The ordered form is not Published"


@pytest.mark.parametrize("rule", ["NoDistribution", 2, "nodistribution"])
def test_a_form_that_must_be_signed_cannot_go_without_distribution(sim, ids, rule):
    response = sim.order(formId=ids.SIGNED_FORM, distributionRule=rule)
    assert response.status_code == 400
    assert message(response) == ("The ordered form needs to be signed. This is not possible when using "
                                 "DistributionRule = 'NoDistribution'.")


def test_a_request_that_demands_signing_cannot_go_without_distribution(sim):
    response = sim.order(mustBeSigned=True, distributionRule="NoDistribution")
    assert message(response) == messages.SIGNING_WITH_NO_DISTRIBUTION
    assert sim.order(mustBeSigned=False, distributionRule="NoDistribution").status_code == 200


def test_a_form_that_must_be_signed_cannot_be_ordered_on_behalf_of_someone(sim, ids):
    response = sim.order(formId=ids.SIGNED_FORM, onBehalfOfNationalId=ids.TEST_PERSON)
    assert response.status_code == 400
    assert message(response) == ("The ordered form needs to be signed. This is not possible when the form is "
                                 "ordered on behalf of someone.")
    response = sim.order(mustBeSigned=True, onBehalfOfNationalId=ids.TEST_PERSON)
    assert message(response) == messages.SIGNING_ON_BEHALF


def test_an_order_on_behalf_of_its_own_recipient_is_about_the_recipient_so_it_may_be_signed(sim, ids):
    """It was refused as "ordered on behalf of someone" (the proxy links such an order with ones naming nobody)."""
    for fields in ({"formId": ids.SIGNED_FORM}, {"mustBeSigned": True}):
        response = sim.order(nationalId=ids.TEST_PERSON, onBehalfOfNationalId=ids.TEST_PERSON, **fields)
        assert response.status_code == 200, message(response)


@pytest.mark.parametrize("rule", ["PaperOnly", "BasicOrPaper", "AllowUnsecureOrPaper", 3, 4, 5])
def test_paper_rules_need_a_paper_enabled_form(sim, ids, rule):
    response = sim.order(distributionRule=rule)
    assert response.status_code == 400
    assert message(response) == f"Form with id='{ids.RAND_12}' is not paper enabled"
    assert sim.order(formId=ids.PAPER_FORM, distributionRule=rule).status_code == 200


@pytest.mark.parametrize("rule", ["Basic", "AllowUnsecure", "NoDistribution", "HelsenorgeOnly",
                                  "DigitalMailboxOnly", "UnsecureOnly"])
def test_other_rules_do_not_need_paper(sim, rule):
    assert sim.order(distributionRule=rule).status_code == 200


@pytest.mark.parametrize("metadata", ["{age: 76}", "", "{\"age\": 76", "NaN", "{\"a\": NaN}"])
def test_metadata_that_is_not_json(sim, metadata):
    response = sim.order(metadata=metadata)
    assert response.status_code == 400
    assert message(response).startswith("JSON in metadata is not valid: ")
    assert len(message(response)) > len("JSON in metadata is not valid: ")


@pytest.mark.parametrize("metadata, kind", [("[1, 2]", "an array"), ("76", "a number"), ("\"x\"", "a string")])
def test_metadata_must_hold_a_json_object(sim, metadata, kind):
    response = sim.order(metadata=metadata)
    assert message(response) == ("JSON in metadata is not valid: expected a JSON object such as "
                                 f"{{\"age\": 76}}, got {kind}")


def test_metadata_nested_too_deeply(sim):
    response = sim.order(metadata="[" * 5000)
    assert message(response) == "JSON in metadata is not valid: nested too deeply (at most 64 levels)"


def test_metadata_as_the_guide_sends_it(sim):
    assert sim.order(metadata="{\"age\": 76}").status_code == 200


# --- the order of the checks ----------------------------------------------------------
@pytest.mark.parametrize("fields, text", [
    # schema before national id
    ({"formId": "x", "nationalId": "123"}, "formId: 'x' is not a valid uuid"),
    # national id before expiry and form
    ({"nationalId": "123", "expiryDate": "soon", "formId": "00000000-0000-0000-0000-000000000001"},
     messages.malformed_national_id("nationalId", "it must be exactly 11 digits")),
    # expiry before form
    ({"expiryDate": "soon", "formId": "00000000-0000-0000-0000-000000000001"},
     "expiryDate: 'soon' is not an ISO-8601 date or date-time"),
    # form existence before the rest
    ({"formId": "00000000-0000-0000-0000-000000000001", "metadata": "{"},
     "No form with id='00000000-0000-0000-0000-000000000001' exists"),
    # published before signing and paper
    ({"formId": "71dda605-8068-4905-9939-f2c27ba58386", "distributionRule": "NoDistribution", "mustBeSigned": True},
     messages.FORM_NOT_PUBLISHED),
    # signing before paper
    ({"formId": "4de7d33a-334f-41de-b2ed-9451bd942280", "distributionRule": "PaperOnly",
      "onBehalfOfNationalId": "26670271527"}, messages.SIGNING_ON_BEHALF),
    ({"mustBeSigned": True, "distributionRule": "NoDistribution", "metadata": "{"},
     messages.SIGNING_WITH_NO_DISTRIBUTION),
    # paper before metadata
    ({"distributionRule": "PaperOnly", "metadata": "{"},
     "Form with id='1bc5f9f0-2607-49eb-94f0-6af955bbd79a' is not paper enabled"),
])
def test_the_first_failing_check_in_epROMs_order_is_reported(sim, fields, text):
    assert message(sim.order(**fields)) == text


# --- a refusal changes nothing --------------------------------------------------------
def test_refused_requests_create_nothing_and_consume_no_ids(make_sim, ids):
    refused = make_sim(seed=3)
    bad = [{"formId": ids.UNPUBLISHED_FORM}, {"nationalId": "123"}, {"metadata": "{"},
           {"distributionRule": "PaperOnly"}, {"expiryDate": "2020-01-01"}]
    for fields in bad:
        assert refused.order(**fields).status_code == 400
    assert refused.order(key="nope").status_code == 400
    refused.advance(days=30)
    assert refused.orders() == []
    assert refused.transport.sent == []
    assert refused.deliveries() == []

    first_after_refusals = refused.ordered(expiryDate="2025-03-01")["id"]
    fresh = make_sim(seed=3)
    assert fresh.ordered(expiryDate="2025-03-01")["id"] == first_after_refusals
