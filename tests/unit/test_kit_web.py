"""service_kit.web via a tiny Flask app: JSON errors, strict JSON-object bodies, the Basic apiKey header."""
from __future__ import annotations

import logging

import pytest
from flask import Flask, jsonify

from eprom_protocol.messages import (
    BODY_NOT_OBJECT,
    BODY_TOO_LARGE,
    MISSING_AUTHORIZATION,
    ProtocolError,
    body_not_json,
)
from service_kit.web import (
    DEFAULT_MAX_BODY,
    api_key_from_header,
    install_error_handlers,
    json_object_body,
    optional_json_object_body,
)

SECRET = "secret-detail-7f3a /etc/passwd"


def make_app(**config) -> Flask:
    app = Flask("web-test")
    app.config.update(config)
    install_error_handlers(app)

    @app.post("/body")
    def body():
        return jsonify({"got": json_object_body()})

    @app.post("/optional")
    def optional():
        return jsonify({"got": optional_json_object_body()})

    @app.get("/key")
    def key():
        return jsonify({"key": api_key_from_header()})

    @app.get("/boom")
    def boom():
        raise RuntimeError(SECRET)

    @app.get("/refused")
    def refused():
        raise ProtocolError("The ordered form is not Published")

    @app.get("/conflict")
    def conflict():
        raise ProtocolError("taken", status=409)

    return app


@pytest.fixture
def client():
    return make_app().test_client()


def _message(reply, status):
    assert reply.status_code == status
    assert reply.is_json
    body = reply.get_json()
    assert set(body) == {"message"}
    return body["message"]


# --- JSON bodies -----------------------------------------------------------------------

def test_a_json_object_is_returned(client):
    reply = client.post("/body", json={"formId": "x", "n": [1, 2]})
    assert reply.status_code == 200
    assert reply.get_json() == {"got": {"formId": "x", "n": [1, 2]}}


def test_content_type_is_not_required(client):
    reply = client.post("/body", data='{"a": 1}', content_type="text/plain")
    assert reply.get_json() == {"got": {"a": 1}}


@pytest.mark.parametrize("data, detail", [
    ("hello", "Expecting value: line 1 column 1 (char 0)"),
    ("{a: 1}", "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    ("{\"a\": 1", "Expecting ',' delimiter: line 1 column 8 (char 7)"),
    ("", "Expecting value: line 1 column 1 (char 0)"),
    ("   ", "Expecting value: line 1 column 4 (char 3)"),
    (b"\xff\xfe{}", "Expecting value: line 1 column 1 (char 0)"),
    (b"{\"a\": \"\xc3\x28\"}", "the bytes are not UTF-8 text"),
])
def test_non_json_body(client, data, detail):
    reply = client.post("/body", data=data, content_type="application/json")
    assert _message(reply, 400) == body_not_json(detail)


@pytest.mark.parametrize("data, detail", [
    ('{"a": NaN}', "NaN is not a JSON value"),
    ('{"a": [Infinity]}', "Infinity is not a JSON value"),
    ('{"a": {"b": -Infinity}}', "-Infinity is not a JSON value"),
    ('{"a": 1e999}', "a number too large for JSON (beyond a double)"),
    ('{"a": -1.5e400}', "a number too large for JSON (beyond a double)"),
    ('{"a": ' + "7" * 5000 + "}", "a number with more than 4300 digits"),
])
def test_what_python_reads_but_json_does_not_have_is_a_400(client, data, detail):
    """Python's json (and so Flask's get_json) reads NaN, Infinity and 1e999 (as infinity) and would write
    them back as NaN/Infinity, which no JSON parser reads, nor SQLite's JSON functions."""
    reply = client.post("/body", data=data, content_type="application/json")
    assert _message(reply, 400) == body_not_json(detail)
    assert "7777" not in _message(reply, 400), "the number itself is not echoed"


@pytest.mark.parametrize("data, value", [
    ('{"a": 1.7976931348623157e308}', 1.7976931348623157e308),
    ('{"a": -5e-324}', -5e-324),
    ('{"a": 1e-999}', 0.0),  # underflow to zero is a finite number: JSON allows it
    ('{"a": ' + "7" * 4300 + "}", int("7" * 4300)),
])
def test_numbers_at_the_edges_of_a_double_are_read(client, data, value):
    assert client.post("/body", data=data, content_type="application/json").get_json() == {"got": {"a": value}}


@pytest.mark.parametrize("data", ["[]", "[{\"a\": 1}]", "null", " null ", "\"text\"", "42", "true"])
def test_json_that_is_not_an_object(client, data):
    reply = client.post("/body", data=data, content_type="application/json")
    assert _message(reply, 400) == BODY_NOT_OBJECT


def test_too_large_body_is_a_400(client):
    data = '{"x": "' + "a" * DEFAULT_MAX_BODY + '"}'
    reply = client.post("/body", data=data, content_type="application/json")
    assert _message(reply, 400) == BODY_TOO_LARGE


def test_body_limit_is_configurable():
    app = make_app(MAX_CONTENT_LENGTH=64)
    client = app.test_client()
    assert client.post("/body", json={"x": "a" * 20}).status_code == 200
    assert _message(client.post("/body", json={"x": "a" * 100}), 400) == BODY_TOO_LARGE


def test_body_just_under_the_default_limit_is_accepted(client):
    data = '{"x": "' + "a" * (DEFAULT_MAX_BODY - 20) + '"}'
    assert client.post("/body", data=data, content_type="application/json").status_code == 200


@pytest.mark.parametrize("data", ["", "  \n"])
def test_optional_body_may_be_empty(client, data):
    reply = client.post("/optional", data=data)
    assert reply.status_code == 200
    assert reply.get_json() == {"got": {}}


def test_optional_body_is_still_strict_when_present(client):
    assert client.post("/optional", json={"a": 1}).get_json() == {"got": {"a": 1}}
    not_json = body_not_json("Expecting value: line 1 column 1 (char 0)")
    assert _message(client.post("/optional", data="nope"), 400) == not_json
    assert _message(client.post("/optional", data="[]"), 400) == BODY_NOT_OBJECT


# --- Authorization: Basic <apiKey> ------------------------------------------------------

def test_missing_authorization_is_a_401(client):
    assert _message(client.get("/key"), 401) == MISSING_AUTHORIZATION


@pytest.mark.parametrize("header", ["", "   ", "Basic", "Basic   ", "Bearer abc", "abc"])
def test_unusable_authorization_is_a_401(client, header):
    assert _message(client.get("/key", headers={"Authorization": header}), 401) == MISSING_AUTHORIZATION


@pytest.mark.parametrize("header, key", [
    ("Basic key-a", "key-a"),
    ("basic key-a", "key-a"),
    ("BASIC key-a", "key-a"),
    ("  Basic   key-a  ", "key-a"),
    # the raw key, not base64 of user:password: nothing is decoded
    ("Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
    ("Basic 3f2b9c1e-aaaa-bbbb-cccc-0123456789ab", "3f2b9c1e-aaaa-bbbb-cccc-0123456789ab"),
])
def test_basic_key_is_parsed(client, header, key):
    reply = client.get("/key", headers={"Authorization": header})
    assert reply.status_code == 200
    assert reply.get_json() == {"key": key}


# --- errors are JSON -------------------------------------------------------------------

def test_protocol_error_is_its_status_and_message(client):
    assert _message(client.get("/refused"), 400) == "The ordered form is not Published"
    assert _message(client.get("/conflict"), 409) == "taken"


def test_unexpected_exception_is_a_500_json_without_the_exception_text(client, caplog):
    with caplog.at_level(logging.ERROR, logger="service_kit.web"):
        reply = client.get("/boom")
    message = _message(reply, 500)
    assert message == "Internal error in the server; see its log"
    text = reply.get_data(as_text=True)
    assert "secret-detail" not in text
    assert "passwd" not in text
    assert "RuntimeError" not in text
    assert "Traceback" not in text
    # ...but the log has it, for whoever runs the server
    assert any(r.exc_info and SECRET in str(r.exc_info[1]) for r in caplog.records)


def test_unknown_path_is_a_json_404(client):
    message = _message(client.get("/nowhere"), 404)
    assert message


def test_wrong_method_is_a_json_405(client):
    message = _message(client.get("/body"), 405)
    assert message


def test_json_nested_too_deep_is_a_400_not_a_500(client):
    data = "[" * 200_000 + "]" * 200_000
    reply = client.post("/body", data=data, content_type="application/json")
    assert _message(reply, 400) == body_not_json("nested too deeply (at most 64 levels)")
