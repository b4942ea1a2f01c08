"""The proxy's HTTP edges: the registry-facing ePROM API and the callback ePROM calls."""
from __future__ import annotations

import hmac

from flask import Blueprint, jsonify

from eprom_protocol.messages import ProtocolError, unknown_api_key
from service_kit.timeline import Timeline
from service_kit.web import after_response, api_key_from_header, json_object_body

from .config import ProxyConfig, RegistryAccount
from .service import ProxyService


def registry_for_request(config: ProxyConfig) -> RegistryAccount:
    key = api_key_from_header()
    for account in config.registries:  # constant-time compare: keys are secrets
        if hmac.compare_digest(account.api_key.encode(), key.encode()):
            return account
    raise ProtocolError(unknown_api_key(key))


def protocol_blueprint(service: ProxyService, timeline: Timeline) -> Blueprint:
    bp = Blueprint("eprox", __name__)

    @bp.post("/api/v2/formorder")
    def place_order():
        registry = registry_for_request(service.config)
        result = service.place_order(registry, json_object_body())
        response = jsonify(result.body)
        response.status_code = result.status
        if result.hold is not None:
            after_response(response, timeline.hold, lambda: service.release(result.hold))
        return response

    @bp.put("/api/PromsFormOrder")
    def eprom_callback():
        try:
            body = json_object_body()
        except ProtocolError as err:
            return jsonify({"success": False, "message": err.message}), 400
        status, answer = service.accept_callback(body)
        return jsonify(answer), status

    return bp


def sim_blueprint(service: ProxyService) -> Blueprint:
    """Proxy-specific control calls (sim mode): what the outbox holds, for tests and reports."""
    bp = Blueprint("eprox_sim", __name__, url_prefix="/_sim")

    @bp.get("/deliveries")
    def deliveries():
        return jsonify([
            {"id": d.id, "registry": d.registry, "registryOrderId": d.registry_order, "status": d.status,
             "state": d.state, "attempts": d.attempts, "nextAttemptAt": d.next_attempt_at.isoformat(),
             "lastError": d.last_error}
            for d in service.store.deliveries()
        ])

    return bp
