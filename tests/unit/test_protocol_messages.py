"""The documented error texts (SPEC §1), compared with strings copied from SPEC.md, so a typo in
either place fails here."""
from __future__ import annotations

import pytest

from eprom_protocol import messages
from eprom_protocol.messages import ProtocolError

FORM_ID = "1bc5f9f0-2607-49eb-94f0-6af955bbd79a"


@pytest.mark.parametrize("actual, spec", [
    (messages.FORM_NOT_PUBLISHED, "The ordered form is not Published"),
    (messages.no_such_form(FORM_ID), "No form with id='1bc5f9f0-2607-49eb-94f0-6af955bbd79a' exists"),
    (messages.SIGNING_WITH_NO_DISTRIBUTION,
     "The ordered form needs to be signed. This is not possible when using DistributionRule = 'NoDistribution'."),
    (messages.SIGNING_ON_BEHALF,
     "The ordered form needs to be signed. This is not possible when the form is ordered on behalf of someone."),
    (messages.form_not_paper_enabled(FORM_ID),
     "Form with id='1bc5f9f0-2607-49eb-94f0-6af955bbd79a' is not paper enabled"),
    (messages.invalid_metadata("Unexpected character encountered while parsing value: x. Path '', line 0, position 0."),
     "JSON in metadata is not valid: Unexpected character encountered while parsing value: x. Path '', line 0, position 0."),
    (messages.fh_number_not_supported(),
     "nationalId: FH-nummer is not supported as national ID. The national ID must be either Norsk fødselsnummer or D-nummer."),
    (messages.h_number_not_supported(),
     "nationalId: H-nummer is not supported as national ID. The national ID must be either Norsk fødselsnummer or D-nummer."),
    (messages.unknown_api_key("wrong-key"), "apiKey 'wrong-key' doesn't exists"),
    (messages.MAIN_DOCUMENT_MISSING, "Main document in MessageToCitizen is missing"),
    (messages.ZERO_UUID, "00000000-0000-0000-0000-000000000000"),
])
def test_documented_text_verbatim(actual, spec):
    assert actual == spec


def test_templates_insert_the_value_once():
    assert messages.no_such_form("x") == "No form with id='x' exists"
    assert messages.form_not_paper_enabled("") == "Form with id='' is not paper enabled"
    assert messages.unknown_api_key("") == "apiKey '' doesn't exists"
    assert messages.invalid_metadata("") == "JSON in metadata is not valid: "


def test_our_own_national_id_text_has_the_same_shape_and_names_the_field():
    text = messages.malformed_national_id("onBehalfOfNationalId", "the check digits are wrong")
    assert text.startswith("onBehalfOfNationalId: ")
    assert "(the check digits are wrong)" in text
    assert text.endswith("The national ID must be either Norsk fødselsnummer or D-nummer.")


@pytest.mark.parametrize("text", [messages.MISSING_AUTHORIZATION, messages.BODY_NOT_JSON,
                                  messages.BODY_NOT_OBJECT, messages.BODY_TOO_LARGE])
def test_our_own_texts_are_single_lines(text):
    assert text and "\n" not in text and text == text.strip()


def test_protocol_error_defaults_to_400_and_carries_its_message():
    err = ProtocolError(messages.FORM_NOT_PUBLISHED)
    assert err.status == 400
    assert err.message == "The ordered form is not Published"
    assert str(err) == "The ordered form is not Published"
    assert err.body() == {"message": "The ordered form is not Published"}
    assert ProtocolError("x", status=401).status == 401
