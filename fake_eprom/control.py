"""The fake ePROM's part of the control API (SPEC §4): patients, orders, answers, letters, signed documents,
delivery-partner faults and deliveries."""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from eprom_protocol.messages import ProtocolError
from service_kit.web import optional_json_object_body

from .patient_schema import PATIENT_SCHEMA
from .patients import parse_form_data
from .service import FakeEprom

ANSWER_FIELDS = ("formData",)


def control_blueprint(eprom: FakeEprom) -> Blueprint:
    bp = Blueprint("eprom_control", __name__, url_prefix="/_sim")

    @bp.post("/patients")
    def add_patient():
        # every field is optional (SPEC §4): no body at all is a default patient, as {} is
        return jsonify(eprom.patient_json(eprom.add_patient(optional_json_object_body()))), 201

    @bp.get("/patients")
    def list_patients():
        return jsonify([eprom.patient_json(p) for p in eprom.patients()])

    @bp.get("/patients/schema")
    def patient_schema():
        return jsonify(PATIENT_SCHEMA)

    @bp.get("/forms")
    def list_forms():
        return jsonify([f.summary() for f in eprom.config.catalog])

    @bp.get("/orders")
    def list_orders():
        return jsonify(eprom.orders(national_id=_query("nationalId"), form_id=_query("formId")))

    @bp.get("/orders/<order_id>")
    def get_order(order_id: str):
        return jsonify(eprom.order(order_id))

    @bp.post("/orders/<order_id>/answer")
    def answer(order_id: str):
        body = optional_json_object_body()
        unknown = sorted(set(body) - set(ANSWER_FIELDS))
        if unknown:
            raise ProtocolError(f"unknown field(s) {', '.join(unknown)}; an answer may have: formData")
        return jsonify(eprom.answer(order_id, parse_form_data(body.get("formData"))))

    @bp.get("/messages")
    def list_messages():
        return jsonify(eprom.messages(national_id=_query("nationalId")))

    @bp.get("/messages/<message_id>")
    def get_message(message_id: str):
        return jsonify(eprom.message(message_id))

    @bp.get("/message-faults")
    def get_message_faults():
        return jsonify(eprom.message_faults())

    @bp.post("/message-faults")
    def set_message_faults():
        return jsonify(eprom.message_faults(optional_json_object_body()))

    @bp.get("/documents")
    def list_documents():
        return jsonify(eprom.document_summaries())

    @bp.get("/deliveries")
    def list_deliveries():
        return jsonify(eprom.deliveries(order_id=_query("orderId"), message_id=_query("messageToCitizenId")))

    return bp


def _query(name: str) -> str | None:
    value = request.args.get(name, "").strip()
    return value or None
