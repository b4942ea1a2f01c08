"""The ePROM v2 protocol endpoints the fake serves (SPEC §1): orders, letters to citizens, signed documents."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from service_kit.web import after_response, api_key_from_header, json_object_body

from .documents import render_pdf
from .letters import MAX_BODY_BYTES
from .service import FakeEprom, Placed


def protocol_blueprint(eprom: FakeEprom) -> Blueprint:
    bp = Blueprint("eprom_protocol", __name__)

    @bp.post("/api/v2/formorder")
    def formorder():
        system = eprom.system_for_key(api_key_from_header())
        return _respond(eprom, eprom.place_order(system, json_object_body()))

    @bp.post("/api/v2/messagetocitizen")
    def messagetocitizen():
        system = eprom.system_for_key(api_key_from_header())
        request.max_content_length = MAX_BODY_BYTES  # letters carry PDFs of up to 30 MB (as base64)
        return _respond(eprom, eprom.send_message(system, json_object_body()))

    @bp.get("/api/ExternalDocument/<path:document_id>")
    def external_document(document_id: str):
        system = eprom.system_for_key(api_key_from_header())
        document = eprom.signed_document(system, document_id)
        return Response(render_pdf(document), mimetype="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="{document.id}.pdf"'})

    return bp


def _respond(eprom: FakeEprom, placed: Placed) -> Response:
    response = jsonify(placed.response)
    if placed.subject_id is not None:
        subject_id = placed.subject_id
        # its callbacks go only once the ordering system has its id (DESIGN.md, "Time"); the timeline's hold
        # makes settle() wait for that, the scheduler's gate makes every run wait for it
        after_response(response, eprom.runtime.timeline.hold, lambda: eprom.release(subject_id))
    return response
