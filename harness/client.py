"""A small HTTP client for a running harness, built from its ready file only: what black-box tests, the
demo and any other tool use to drive the servers through their /_sim control API."""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from eprom_protocol.enums import FormOrderStatus

RAND_12 = "1bc5f9f0-2607-49eb-94f0-6af955bbd79a"
DEFAULT_EXPIRY = timedelta(days=30)


class ControlError(RuntimeError):
    """A control call did not give the answer it should have; says which call and what came back."""

    def __init__(self, message: str, status: int | None = None, body: Any = None):
        super().__init__(message)
        self.status = status
        self.body = body


def camel(key: str) -> str:
    """national_id -> nationalId; keys already in camelCase stay as they are."""
    return re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), key)


def wire_fields(fields: dict[str, Any]) -> dict[str, Any]:
    return {camel(k): v for k, v in fields.items()}


class HarnessClient:
    """Talks to a harness over HTTP only. Registries are named as in the ready file."""

    def __init__(self, info: dict, timeout: float = 60.0):
        self.info = info
        self.timeout = timeout
        self._session = requests.Session()

    @classmethod
    def from_ready_file(cls, path: str | Path, timeout: float = 60.0) -> "HarnessClient":
        return cls(json.loads(Path(path).read_text(encoding="utf-8")), timeout)

    def close(self) -> None:
        self._session.close()

    # --- where things are -----------------------------------------------------------------
    @property
    def eprom_url(self) -> str:
        return self.info["eprom"]["url"]

    @property
    def proxy_url(self) -> str:
        return self.info["proxy"]["url"]

    @property
    def registry_names(self) -> list[str]:
        return [r["name"] for r in self.info["registries"]]

    def registry(self, name: str) -> dict:
        for registry in self.info["registries"]:
            if registry["name"] == name:
                return registry
        raise ControlError(f"no registry named {name!r}; the harness has: {', '.join(self.registry_names)}")

    def registry_url(self, name: str) -> str:
        return self.registry(name)["url"]

    def api_key(self, name: str) -> str:
        return self.registry(name)["apiKey"]

    def urls(self) -> dict[str, str]:
        """Every server by name: eprom, proxy and the registries."""
        return {"eprom": self.eprom_url, "proxy": self.proxy_url,
                **{r["name"]: r["url"] for r in self.info["registries"]}}

    def form_id(self, name: str = "RAND-12") -> str:
        """The id of a form in the catalog by (part of) its name."""
        for form in self.info["forms"]:
            if name.lower() in form["name"].lower():
                return form["id"]
        raise ControlError(f"no form named like {name!r} in the catalog")

    @property
    def default_form_id(self) -> str:
        ids = [f["id"] for f in self.info["forms"]]
        if RAND_12 in ids:
            return RAND_12
        published = [f["id"] for f in self.info["forms"] if f.get("published")]
        if not published:
            raise ControlError("the catalog has no published form")
        return published[0]

    # --- the clock ---------------------------------------------------------------------
    def now(self, server: str = "eprom") -> datetime:
        return datetime.fromisoformat(self._call("GET", f"{self.urls()[server]}/_sim/clock")["now"])

    def advance(self, **units: float) -> datetime:
        """Move the shared clock (days=, hours=, minutes=, seconds=) and run everything that falls due."""
        return datetime.fromisoformat(self._call("POST", f"{self.eprom_url}/_sim/clock/advance", units)["now"])

    def settle(self) -> int:
        """Wait until no callback is in flight or due now; returns what is still pending (0)."""
        return self._call("POST", f"{self.eprom_url}/_sim/settle")["pending"]

    # --- registries --------------------------------------------------------------------
    def order(self, registry: str, **fields: Any) -> dict:
        """Place an order from a registry: {"status": target's HTTP status, "body": target's JSON}.

        Fields are wire fields (formId, nationalId, ...; snake_case is turned into camelCase). formId
        defaults to RAND-12 and expiryDate to 30 days from now; a dict metadata is sent as a JSON string,
        as the wire wants it."""
        body = wire_fields(fields)
        body.setdefault("formId", self.default_form_id)
        if "expiryDate" not in body:
            body["expiryDate"] = (self.now() + DEFAULT_EXPIRY).isoformat()
        if isinstance(body.get("metadata"), dict):
            body["metadata"] = json.dumps(body["metadata"])
        return self._call("POST", f"{self.registry_url(registry)}/_sim/orders", body)

    def placed_orders(self, registry: str) -> list[dict]:
        return self._call("GET", f"{self.registry_url(registry)}/_sim/orders")

    def inbox(self, registry: str, order_id: str | None = None) -> list[dict]:
        """The callbacks a registry received, in order (only those about order_id, when given)."""
        callbacks = self._call("GET", f"{self.registry_url(registry)}/_sim/inbox")
        if order_id is None:
            return callbacks
        return [c for c in callbacks if isinstance(c.get("body"), dict) and c["body"].get("formOrderId") == order_id]

    def statuses(self, registry: str, order_id: str) -> list[str]:
        """The formOrderStatus names a registry received for one of its orders, in order."""
        names = []
        for callback in self.inbox(registry, order_id):
            raw = callback["body"].get("formOrderStatus")
            names.append(FormOrderStatus.parse(raw).wire_name if FormOrderStatus.is_valid(raw) else repr(raw))
        return names

    def clear_inbox(self, registry: str) -> int:
        return self._call("DELETE", f"{self.registry_url(registry)}/_sim/inbox")["cleared"]

    def faults(self, registry: str, **settings: float) -> dict:
        """Set how a registry answers its next callbacks (fail_next=, success_false=, delay_seconds=);
        with no settings, read the current ones."""
        url = f"{self.registry_url(registry)}/_sim/faults"
        if not settings:
            return self._call("GET", url)
        return self._call("POST", url, wire_fields(settings))

    # --- fake ePROM --------------------------------------------------------------------
    def add_patient(self, **fields: Any) -> dict:
        """Add a patient to fake ePROM (national_id=, reachable=[...], answer={"after": "P3D"} or None, ...)."""
        return self._call("POST", f"{self.eprom_url}/_sim/patients", wire_fields(fields))

    def eprom_orders(self, national_id: str | None = None, form_id: str | None = None) -> list[dict]:
        """The orders fake ePROM holds, optionally for one patient and form."""
        params = {k: v for k, v in (("nationalId", national_id), ("formId", form_id)) if v is not None}
        found = self._call("GET", f"{self.eprom_url}/_sim/orders", params=params)
        return found["orders"] if isinstance(found, dict) and "orders" in found else found

    def answer(self, order_id: str, form_data: Any = None) -> dict:
        """The patient answers an ePROM order now (form_data: the answers, or the simulator's own)."""
        body = {} if form_data is None else {"formData": form_data}
        return self._call("POST", f"{self.eprom_url}/_sim/orders/{order_id}/answer", body)

    # --- plumbing ----------------------------------------------------------------------
    def _call(self, method: str, url: str, body: Any = None, params: dict | None = None) -> Any:
        try:
            reply = self._session.request(method, url, json=body, params=params, timeout=self.timeout)
        except requests.RequestException as err:
            raise ControlError(f"{method} {url}: no answer: {err}") from None
        try:
            data = reply.json()
        except ValueError:
            data = reply.text
        if not 200 <= reply.status_code < 300:
            message = data.get("message") if isinstance(data, dict) else data
            raise ControlError(f"{method} {url}: HTTP {reply.status_code}: {message}", reply.status_code, data)
        return data
