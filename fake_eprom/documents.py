"""Signed forms: the document a signed answer leaves behind, served as a PDF by
`GET /api/ExternalDocument/{signedFormId}` to the ordering system the order belongs to, for at least
30 simulated days after signing (SPEC §1; the guide's "SKJEMA SOM KREVER SIGNATUR")."""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fpdf import FPDF

from eprom_protocol.national_id import mask
from eprom_protocol.timefmt import iso, local_timestamp

from .forms import Form, Question

PDF_FONT = "Helvetica"  # a core font: no font file to ship; it covers Latin-1, so Norwegian letters too
_PUNCTUATION = {"\u2013": "-", "\u2014": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                "\u2026": "...", "\u00a0": " "}


@dataclass(frozen=True, eq=False)
class SignedDocument:
    id: str  # the signedFormId
    order_id: str
    system_name: str  # the ordering system the order belongs to: the only one that may download it
    form: Form
    national_id: str
    patient_name: str
    answers: dict[str, Any] = field(repr=False)
    signed_at: datetime
    signing_text: str | None = None
    signed_by: str | None = None  # who signed, when not the patient (filledOutByActNationalId)

    def available_until(self, days: int) -> datetime:
        return self.signed_at + timedelta(days=days)

    def summary(self, days: int) -> dict:
        """The document as GET /_sim/documents lists it (no answers, no PDF)."""
        return {"signedFormId": self.id, "orderId": self.order_id, "orderingSystem": self.system_name,
                "formId": self.form.id, "signedAt": iso(self.signed_at),
                "availableUntil": iso(self.available_until(days))}

    def __repr__(self) -> str:
        return f"SignedDocument({self.id}, order={self.order_id}, patient={mask(self.national_id)})"


class DocumentStore:
    """Thread-safe. A document is visible to its own ordering system until `days` after signing."""

    def __init__(self, days: int):
        self.days = days
        self._documents: dict[str, SignedDocument] = {}
        self._lock = threading.Lock()

    def add(self, document: SignedDocument) -> None:
        with self._lock:
            self._documents[document.id] = document

    def get_for(self, document_id: str, system_name: str, now: datetime) -> SignedDocument | None:
        """The document, if it is this system's and still served; None in every other case alike."""
        with self._lock:
            document = self._documents.get(document_id.strip().lower())
        if document is None or document.system_name != system_name or now > document.available_until(self.days):
            return None
        return document

    def all(self) -> list[SignedDocument]:
        with self._lock:
            return list(self._documents.values())


def render_pdf(document: SignedDocument) -> bytes:
    """A real PDF of the signed answers. The same document always gives the same bytes."""
    pdf = FPDF(format="A4")
    pdf.set_creation_date(document.signed_at)
    pdf.set_title(_text(document.form.name))
    pdf.set_author("ePROM (simulated)")
    pdf.set_subject(f"Signed form {document.id}")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font(PDF_FONT, style="B", size=16)
    _line(pdf, document.form.name, 9)
    pdf.set_font(PDF_FONT, size=10)
    _line(pdf, f"Pasient: {document.patient_name} ({document.national_id})", 6)
    _line(pdf, f"Signert: {local_timestamp(document.signed_at)[:19]} (norsk tid)", 6)
    if document.signed_by:
        _line(pdf, f"Signert av: {document.signed_by}", 6)
    if document.signing_text:
        _line(pdf, f"Signeringstekst: {document.signing_text}", 6)
    pdf.ln(4)
    questions = {q.id: q for q in document.form.questions}
    for question in document.form.questions:
        pdf.set_font(PDF_FONT, style="B", size=10)
        _line(pdf, question.text, 5)
        pdf.set_font(PDF_FONT, size=10)
        answer = document.answers.get(question.id)
        _line(pdf, "(ikke besvart)" if question.id not in document.answers else _answer_text(question, answer), 5)
        pdf.ln(2)
    for key, value in document.answers.items():
        if key not in questions:
            _line(pdf, f"{key}: {_json(value)}", 5)
    pdf.ln(4)
    pdf.set_font(PDF_FONT, style="I", size=8)
    _line(pdf, f"Elektronisk signert i ePROM (simulert). signedFormId {document.id}, "
               f"bestilling {document.order_id}.", 4)
    return bytes(pdf.output())


def _answer_text(question: Question, answer: Any) -> str:
    if question.type == "choice":
        for option in question.options:
            if option.value == answer:
                return f"{option.text} ({_json(answer)})"
    return answer if isinstance(answer, str) else _json(answer)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _line(pdf: FPDF, text: str, height: float) -> None:
    pdf.multi_cell(0, height, _text(text), new_x="LMARGIN", new_y="NEXT")


def _text(text: str) -> str:
    """What a core font can draw: Latin-1, no control characters (anything else becomes '?')."""
    text = "".join(_PUNCTUATION.get(c, c) for c in text)
    text = "".join(c if c == "\n" or ord(c) >= 32 else " " for c in text)
    return text.encode("latin-1", "replace").decode("latin-1")
