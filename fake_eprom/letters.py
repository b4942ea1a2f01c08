"""Letters to citizens: the validation of POST /api/v2/messagetocitizen in ePROM's order (SPEC §1) and the
state a message goes through. No Flask, no I/O.

Checks, in order: schema (types) → a main document (the documented error first) → nationalId → each
document's content (base64, a PDF, at most 30 MB decoded) → notificationPriorityList."""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from eprom_protocol import messages, schemas
from eprom_protocol.enums import NotificationChannel as Channel, SentStatus
from eprom_protocol.messages import ProtocolError
from eprom_protocol.national_id import mask, require_orderable
from eprom_protocol.timefmt import iso

from .config import OrderingSystem

#: What the guide's example sends when the ordering system gives no list.
DEFAULT_PRIORITY = (Channel.Helsenorge, Channel.DigitalMailbox)
#: The body limit of this endpoint: a 30 MB main document is 40 MB of base64, with room for attachments.
MAX_BODY_BYTES = 64 * 1024 * 1024
PDF_MAGIC = b"%PDF-"
PENDING = "Pending"


@dataclass(frozen=True)
class Document:
    title: str | None
    file_name: str | None
    size: int  # decoded bytes
    main: bool

    def summary(self) -> dict:
        return {"title": self.title, "fileName": self.file_name, "bytes": self.size, "isMainDocument": self.main}


@dataclass(frozen=True)
class MessageRequest:
    national_id: str
    organisation: str | None
    title: str | None
    documents: tuple[Document, ...]
    priority: tuple[Channel, ...]
    test_mode: bool
    paper_color_print: bool

    def __repr__(self) -> str:
        return f"MessageRequest(citizen={mask(self.national_id)}, priority={[c.name for c in self.priority]})"


def validate_message_request(body: dict[str, Any]) -> MessageRequest:
    """Check a request body; raise ProtocolError(400) with the documented text where there is one."""
    schemas.validate("messagetocitizen-request", body)
    raw_documents = _documents(body.get("documentCollection"))
    mains = [where for where, raw, main in raw_documents if main]
    if not mains:
        raise ProtocolError(messages.MAIN_DOCUMENT_MISSING)
    if len(mains) > 1:
        raise ProtocolError(f"documentCollection: only one document can be the main document; "
                            f"{', '.join(mains)} all are")
    if body.get("nationalId") is None:
        raise ProtocolError("nationalId: is required")
    national_id = require_orderable(body["nationalId"]).value
    documents = tuple(_document(raw, where, main) for where, raw, main in raw_documents)
    return MessageRequest(
        national_id=national_id,
        organisation=(body.get("senderInfo") or {}).get("organisationName"),
        title=(body.get("messageInfo") or {}).get("title"),
        documents=documents,
        priority=_priority(body.get("notificationPriorityList")),
        test_mode=body.get("testMode") is True,
        paper_color_print=body.get("paperColorPrint") is True,
    )


def _documents(collection: Any) -> list[tuple[str, dict, bool]]:
    """(where, document, is it the main one) for each document, whichever accepted shape the collection has."""
    where = "documentCollection"
    if collection is None:
        return []
    if isinstance(collection, list):
        return [(f"{where}.{i}", d, d.get("isMainDocument") is True) for i, d in enumerate(collection)]
    found = [(f"{where}.documents.{i}", d, d.get("isMainDocument") is True)
             for i, d in enumerate(collection.get("documents") or [])]
    if collection.get("mainDocument") is not None:
        found.append((f"{where}.mainDocument", collection["mainDocument"], True))
    found += [(f"{where}.attachments.{i}", d, False) for i, d in enumerate(collection.get("attachments") or [])]
    return found


def _document(raw: dict, where: str, main: bool) -> Document:
    text = "".join(raw["content"].split())  # line breaks in base64 are fine, as .NET reads it
    try:
        content = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise ProtocolError(f"{where}.content: is not valid base64") from None
    if len(content) > messages.MAX_MESSAGE_DOCUMENT_BYTES:
        raise ProtocolError(messages.document_too_large(where, len(content)))
    if not content.startswith(PDF_MAGIC):
        raise ProtocolError(f"{where}.content: is not a PDF (a PDF file starts with %PDF-)")
    return Document(raw.get("title"), raw.get("fileName"), len(content), main)


def _priority(value: list | None) -> tuple[Channel, ...]:
    if value is None:
        return DEFAULT_PRIORITY
    if not value:
        raise ProtocolError("notificationPriorityList: give at least one channel, such as [\"Helsenorge\"]")
    found: list[Channel] = []
    for item in value:
        channel = Channel.parse(item)  # the schema has checked it is one
        if channel is Channel.None_:
            raise ProtocolError("notificationPriorityList: None is not a channel to send on")
        if channel not in found:
            found.append(channel)
    return tuple(found)


def choose_letter_channel(priority: tuple[Channel, ...], reachable: frozenset[Channel]) -> Channel | None:
    """The first channel of the ordering system's list that reaches the citizen."""
    return next((c for c in priority if c in reachable), None)


@dataclass(eq=False)
class Message:
    """A letter ePROM holds. Mutated only under the service's lock."""

    id: str
    system: OrderingSystem
    request: MessageRequest
    received_at: datetime
    preferred: Channel
    status: SentStatus | None = None  # None: not sent yet (PENDING)
    channel: Channel | None = None
    sent_at: datetime | None = None
    planned: list = field(default_factory=list)

    def summary(self) -> dict:
        """The message as GET /_sim/messages lists it (no document content)."""
        return {
            "id": self.id,
            "orderingSystem": self.system.name,
            "nationalId": self.request.national_id,
            "title": self.request.title,
            "organisationName": self.request.organisation,
            "status": PENDING if self.status is None else self.status.name,
            "preferredChannel": self.preferred.wire_name,
            "notificationChannel": None if self.channel is None else self.channel.wire_name,
            "notificationPriorityList": [c.wire_name for c in self.request.priority],
            "receivedAt": iso(self.received_at),
            "sentAt": None if self.sent_at is None else iso(self.sent_at),
            "testMode": self.request.test_mode,
            "paperColorPrint": self.request.paper_color_print,
            "documents": [d.summary() for d in self.request.documents],
        }

    def __repr__(self) -> str:
        return f"Message({self.id}, {self.request!r})"
