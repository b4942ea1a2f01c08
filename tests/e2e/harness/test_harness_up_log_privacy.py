"""What the servers of `eprox-harness up` log is masked as the production proxy's logs are: werkzeug quotes
a request line it cannot parse whole, national ids in its path or query string included."""
from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest

from harness.pytest_plugin import HarnessProcess

pytestmark = pytest.mark.e2e

PATIENT = "26670271527"  # synthetic (month + 65)


def send_raw(url: str, line: str) -> bytes:
    """One request line as given; werkzeug logs it before it answers, so the answer means it is logged."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as conn:
        conn.sendall(line.encode() + b"\r\n\r\n")
        return conn.recv(100)


def test_a_bad_request_line_with_a_national_id_is_logged_masked(tmp_path):
    process = HarnessProcess(tmp_path / "run")
    info = process.start()
    try:
        for line in (f"GET /api/ExternalDocument/{PATIENT} x HTTP/1.1",
                     f"GET /healthz?nationalId={PATIENT[:6]}+{PATIENT[6:]} x HTTP/1.1"):
            assert b" 400 " in send_raw(info["proxy"]["url"], line)
    finally:
        assert process.stop() == 0, process.output()
    logged = process.stderr()
    assert "Bad request syntax ('GET /api/ExternalDocument/266702***** x HTTP/1.1')" in logged, logged
    assert "Bad request syntax ('GET /healthz?nationalId=266702+***** x HTTP/1.1')" in logged, logged
    assert PATIENT not in logged and f"{PATIENT[:6]}+{PATIENT[6:]}" not in logged
