"""The proxy's HTTP edges: the registry-facing ePROM API, the callbacks ePROM calls, and a health check."""
from __future__ import annotations

import hmac
import logging

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from eprom_protocol.messages import BODY_TOO_LARGE, ProtocolError, unknown_api_key
from service_kit.timeline import Timeline
from service_kit.web import after_response, api_key_from_header, json_object_body

from .config import ProxyConfig, RegistryAccount
from .privacy import redact
from .service import ProxyService

log = logging.getLogger(__name__)

#: A message to a citizen carries PDFs of up to 30 MB each, base64 (4/3) in JSON.
MESSAGE_MAX_BODY = 64 * 1024 * 1024
#: A returned form is rarely more than tens of kB, but one refused for its size is refused on every resend and
#: never reaches a registry: ePROM's callbacks get far more room than a registry's order.
CALLBACK_MAX_BODY = 8 * 1024 * 1024


def registry_for_request(config: ProxyConfig) -> RegistryAccount:
    key = api_key_from_header()
    found = None
    for account in config.registries:  # constant-time compare, and no early exit: keys are secrets
        if hmac.compare_digest(account.api_key.encode(), key.encode()):
            found = account
    if found is None:
        raise ProtocolError(unknown_api_key(key))
    return found


def _answer(service: ProxyService, timeline: Timeline, status: int, body: dict, hold: str | None) -> Response:
    response = jsonify(body)
    response.status_code = status
    if hold is not None:  # callbacks under this id go only once the registry has it
        after_response(response, timeline.hold, lambda: service.release(hold))
    return response


def _take_callback(accept) -> tuple[Response, int]:
    """An ePROM callback: a body that is not a JSON object is a 400 {"success": false}; ePROM hears success
    only once the callback and its deliveries are committed, anything else is a failure it sends again."""
    request.max_content_length = CALLBACK_MAX_BODY
    try:
        body = json_object_body()
    except ProtocolError as err:
        return jsonify({"success": False, "message": redact(err.message)}), 400
    except RequestEntityTooLarge:
        return jsonify({"success": False, "message": BODY_TOO_LARGE}), 400
    try:
        status, answer = accept(body)
    except Exception:
        log.exception("an ePROM callback could not be recorded; ePROM will send it again")
        return jsonify({"success": False, "message": "not recorded; send it again"}), 500
    if isinstance(answer.get("message"), str):  # a refusal may quote what was sent: never a national id
        answer = {**answer, "message": redact(answer["message"])}
    return jsonify(answer), status


def protocol_blueprint(service: ProxyService, timeline: Timeline) -> Blueprint:
    bp = Blueprint("eprox", __name__)

    @bp.post("/api/v2/formorder")
    def place_order():
        registry = registry_for_request(service.config)
        result = service.place_order(registry, json_object_body())
        return _answer(service, timeline, result.status, result.body, result.hold)

    @bp.post("/api/v2/messagetocitizen")
    def message_to_citizen():
        registry = registry_for_request(service.config)
        request.max_content_length = MESSAGE_MAX_BODY
        result = service.send_message(registry, json_object_body())
        return _answer(service, timeline, result.status, result.body, result.hold)

    @bp.get("/api/ExternalDocument/<path:document_id>")
    def external_document(document_id: str):
        registry = registry_for_request(service.config)
        document = service.fetch_document(registry, document_id)
        return Response(document.content, status=200, content_type=document.content_type)

    @bp.put("/api/PromsFormOrder")
    def eprom_callback():
        return _take_callback(service.accept_callback)

    @bp.put("/api/MessageToCitizen")
    def eprom_message_callback():
        return _take_callback(service.accept_message_callback)

    @bp.get("/healthz")
    def health():
        """For load balancers and process managers: the database answers. Says nothing else."""
        service.store.next_lifetime_end()
        return jsonify({"status": "ok"})

    return bp


def sim_blueprint(service: ProxyService) -> Blueprint:
    """Proxy-specific control calls (sim mode): what the outbox holds, for tests and reports."""
    bp = Blueprint("eprox_sim", __name__, url_prefix="/_sim")

    @bp.get("/deliveries")
    def deliveries():
        state = request.args.get("state") or None
        registry = request.args.get("registry") or None
        return jsonify([d.as_json() for d in service.store.deliveries(state, registry)])

    return bp
