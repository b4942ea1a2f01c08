"""Signed PDFs (real, openable, deterministic, served only to their owner for 30+ days) and the validation
of letters to citizens. No server."""
from __future__ import annotations

import base64
import io
from datetime import datetime, timedelta, timezone

import pytest
from pypdf import PdfReader

from eprom_protocol import messages
from eprom_protocol.enums import NotificationChannel as Channel
from eprom_protocol.messages import ProtocolError
from fake_eprom.documents import DocumentStore, SignedDocument, render_pdf
from fake_eprom.forms import default_catalog
from fake_eprom.letters import DEFAULT_PRIORITY, choose_letter_channel, validate_message_request

SIGNED_AT = datetime(2025, 1, 6, 8, 0, tzinfo=timezone.utc)
SIGNED_FORM = default_catalog()[2]
PDF = b"%PDF-1.4\n%test\n"


def document(**changes) -> SignedDocument:
    fields = dict(id="6f1c1f43-4b0a-4c50-9d3a-3c2e0f0f0f0f", order_id="order-1", system_name="eprox",
                  form=SIGNED_FORM, national_id="26723916517", patient_name="Kari Nordmann",
                  answers={"samtykke_registrering": 1, "samtykke_kontakt": 2, "samtykke_kommentar": "Ønsker – kopi"},
                  signed_at=SIGNED_AT, signing_text="Jeg bekrefter at svarene er mine")
    fields.update(changes)
    return SignedDocument(**fields)


def text_of(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


def test_the_signed_pdf_opens_and_shows_the_form_the_patient_and_the_answers():
    pdf = render_pdf(document())
    assert pdf.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(pdf))
    assert reader.metadata.title == SIGNED_FORM.name
    text = text_of(pdf)
    assert "Samtykke til registrering i kvalitetsregister" in text
    assert "Kari Nordmann" in text and "26723916517" in text
    assert "Ja, jeg samtykker" in text  # the chosen option's text, not only its value
    assert "Ønsker - kopi" in text  # Norwegian letters survive; a dash outside Latin-1 is replaced
    assert "Jeg bekrefter at svarene er mine" in text
    assert "6f1c1f43-4b0a-4c50-9d3a-3c2e0f0f0f0f" in text


def test_the_same_document_gives_the_same_bytes():
    assert render_pdf(document()) == render_pdf(document())
    assert render_pdf(document()) != render_pdf(document(answers={"samtykke_registrering": 2}))


def test_unanswered_questions_and_unknown_keys_and_odd_characters():
    pdf = render_pdf(document(answers={"note": "emoji 😀 and \x00 control", "samtykke_kontakt": 1}))
    text = text_of(pdf)
    assert "(ikke besvart)" in text and "note" in text and "emoji ? and" in text


def test_a_long_answer_spans_pages():
    pdf = render_pdf(document(answers={"samtykke_kommentar": "ord " * 20000}))
    assert len(PdfReader(io.BytesIO(pdf)).pages) > 1


def test_the_store_serves_a_document_only_to_its_system_and_only_for_its_days():
    store = DocumentStore(days=30)
    store.add(document())
    doc_id = document().id
    assert store.get_for(doc_id, "eprox", SIGNED_AT) is not None
    assert store.get_for(doc_id.upper(), "eprox", SIGNED_AT + timedelta(days=30)) is not None
    assert store.get_for(doc_id, "eprox", SIGNED_AT + timedelta(days=30, seconds=1)) is None
    assert store.get_for(doc_id, "registry-b", SIGNED_AT) is None
    assert store.get_for("no-such-id", "eprox", SIGNED_AT) is None
    assert document().summary(30)["availableUntil"] == "2025-02-05T08:00:00+00:00"


# --- letters ---------------------------------------------------------------------------------------
def letter(**changes) -> dict:
    body = {"nationalId": "26723916517", "senderInfo": {"organisationName": "Hoftebruddregisteret",
                                                        "organisationNr": "883974832"},
            "messageInfo": {"title": "Informasjon", "description": "Om registeret", "merknad": None},
            "documentCollection": {"documents": [
                {"title": "Brev", "fileName": "brev.pdf", "isMainDocument": True,
                 "content": base64.b64encode(PDF).decode()}]},
            "notificationPriorityList": ["DigitalMailbox", 1], "testMode": False, "paperColorPrint": True}
    body.update(changes)
    return body


def refusal(body: dict) -> str:
    with pytest.raises(ProtocolError) as err:
        validate_message_request(body)
    assert err.value.status == 400
    return err.value.message


def test_a_valid_letter():
    request = validate_message_request(letter())
    assert request.priority == (Channel.DigitalMailbox, Channel.Helsenorge)
    assert request.paper_color_print and not request.test_mode
    assert [(d.file_name, d.size, d.main) for d in request.documents] == [("brev.pdf", len(PDF), True)]
    assert "26723916517" not in repr(request)


def test_priority_defaults_and_duplicates():
    assert validate_message_request(letter(notificationPriorityList=None)).priority == DEFAULT_PRIORITY
    assert validate_message_request(letter(notificationPriorityList=[4, "physicalmailbox", "2"])).priority == \
        (Channel.PhysicalMailbox, Channel.DigitalMailbox)


@pytest.mark.parametrize("collection", [None, {}, [], {"documents": []}, {"documents": None}, {"mainDocument": None},
                                        {"attachments": [{"content": base64.b64encode(PDF).decode()}]},
                                        {"documents": [{"content": base64.b64encode(PDF).decode()}]},
                                        {"documents": [{"content": base64.b64encode(PDF).decode(),
                                                        "isMainDocument": False}]}])
def test_no_main_document_is_the_documented_error(collection):
    body = letter(documentCollection=collection)
    if collection is None:
        del body["documentCollection"]
    assert refusal(body) == messages.MAIN_DOCUMENT_MISSING == "Main document in MessageToCitizen is missing"
    assert refusal({"documentCollection": collection}) == messages.MAIN_DOCUMENT_MISSING  # the documented one first


def test_the_accepted_shapes_of_a_document_collection():
    doc = {"content": base64.b64encode(PDF).decode(), "title": "Brev"}
    shapes = [{"documents": [{**doc, "isMainDocument": True}, doc]}, {"mainDocument": doc, "attachments": [doc]},
              [{**doc, "isMainDocument": True}, doc]]
    for shape in shapes:
        request = validate_message_request(letter(documentCollection=shape))
        assert [d.main for d in request.documents] in ([True, False], [False, True]), shape
    minimal = validate_message_request({"nationalId": "26723916517", "documentCollection": {"mainDocument": doc}})
    assert (minimal.organisation, minimal.title, minimal.priority) == (None, None, DEFAULT_PRIORITY)


@pytest.mark.parametrize("changes, text", [
    ({"nationalId": "123"}, messages.malformed_national_id("nationalId", "it must be exactly 11 digits")),
    ({"nationalId": "81234567890"}, messages.fh_number_not_supported()),
    ({"nationalId": None}, "nationalId: is required"),
    ({"senderInfo": "Register"}, "senderInfo: must be of type object or null, not string"),
    ({"messageInfo": {"title": 5}}, "messageInfo.title: must be of type string or null, not integer"),
    ({"documentCollection": "brev.pdf"}, "documentCollection: must be of type object or array or null, not string"),
    ({"notificationPriorityList": []}, 'notificationPriorityList: give at least one channel, such as ["Helsenorge"]'),
    ({"notificationPriorityList": ["None"]}, "notificationPriorityList: None is not a channel to send on"),
    ({"notificationPriorityList": ["Fax"]}, "notificationPriorityList.0: 'Fax' is not a valid NotificationChannel; "
                                            "expected one of: 0 None, 1 Helsenorge, 2 DigitalMailbox, 3 Unsecure, "
                                            "4 PhysicalMailbox"),
    ({"notificationPriorityList": [None]}, "notificationPriorityList.0: null is not a valid NotificationChannel; "
                                           "expected one of: 0 None, 1 Helsenorge, 2 DigitalMailbox, 3 Unsecure, "
                                           "4 PhysicalMailbox"),
    ({"testMode": "no"}, "testMode: must be of type boolean or null, not string"),
    ({"documentCollection": {"documents": [{"content": "bm90IGEgcGRm", "isMainDocument": True}]}},
     "documentCollection.documents.0.content: is not a PDF (a PDF file starts with %PDF-)"),
    ({"documentCollection": {"documents": [{"content": "###", "isMainDocument": True}]}},
     "documentCollection.documents.0.content: is not valid base64"),
    ({"documentCollection": {"documents": [{"content": "æøå", "isMainDocument": True}]}},
     "documentCollection.documents.0.content: is not valid base64"),
    ({"documentCollection": {"documents": [{"isMainDocument": True}]}},
     "documentCollection.documents.0: content: is required"),
    ({"documentCollection": {"documents": [{"content": base64.b64encode(PDF).decode(), "isMainDocument": True}] * 2}},
     "documentCollection: only one document can be the main document; documentCollection.documents.0, "
     "documentCollection.documents.1 all are"),
    ({"documentCollection": {"mainDocument": {"content": base64.b64encode(PDF).decode()},
                             "documents": [{"content": base64.b64encode(PDF).decode(), "isMainDocument": True}]}},
     "documentCollection: only one document can be the main document; documentCollection.documents.0, "
     "documentCollection.mainDocument all are"),
    ({"documentCollection": {"mainDocument": {"content": base64.b64encode(PDF).decode()},
                             "attachments": [{"content": "bm9wZQ=="}]}},
     "documentCollection.attachments.0.content: is not a PDF (a PDF file starts with %PDF-)"),
    ({"documentCollection": [{"content": "###", "isMainDocument": True}]},
     "documentCollection.0.content: is not valid base64"),
])
def test_bad_letters(changes, text):
    assert refusal(letter(**changes)) == text


def test_base64_with_line_breaks_is_read_as_dotnet_reads_it():
    wrapped = base64.encodebytes(PDF * 20).decode()
    assert "\n" in wrapped
    body = letter(documentCollection={"documents": [{"content": wrapped, "isMainDocument": True}]})
    assert validate_message_request(body).documents[0].size == len(PDF * 20)


def test_a_document_of_30_mb_is_fine_and_one_byte_more_is_not():
    limit = messages.MAX_MESSAGE_DOCUMENT_BYTES
    assert limit == 30 * 1024 * 1024
    at_limit = PDF + b"0" * (limit - len(PDF))
    body = letter(documentCollection={"documents": [{"content": base64.b64encode(at_limit).decode(),
                                                     "isMainDocument": True}]})
    assert validate_message_request(body).documents[0].size == limit
    over = base64.b64encode(at_limit + b"0").decode()
    body = letter(documentCollection={"documents": [{"content": over, "isMainDocument": True}]})
    assert refusal(body) == messages.document_too_large("documentCollection.documents.0", limit + 1)


def test_attachments_are_checked_too():
    body = letter()
    body["documentCollection"]["documents"].append({"content": "bm9wZQ==", "title": "Vedlegg"})
    assert refusal(body) == "documentCollection.documents.1.content: is not a PDF (a PDF file starts with %PDF-)"


def test_the_letter_goes_on_the_first_channel_of_the_list_that_reaches_the_citizen():
    h, d, p = Channel.Helsenorge, Channel.DigitalMailbox, Channel.PhysicalMailbox
    assert choose_letter_channel((d, h), frozenset({h, d})) is d
    assert choose_letter_channel((d, h), frozenset({h})) is h
    assert choose_letter_channel((d, h), frozenset({p})) is None
