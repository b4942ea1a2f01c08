"""Every error text the ePROM API returns, in one place (SPEC §1), and the error type that carries one."""
from __future__ import annotations

ZERO_UUID = "00000000-0000-0000-0000-000000000000"

# --- The documented texts, exactly as ePROM writes them -------------------------------
FORM_NOT_PUBLISHED = "The ordered form is not Published"
SIGNING_WITH_NO_DISTRIBUTION = (
    "The ordered form needs to be signed. This is not possible when using "
    "DistributionRule = 'NoDistribution'."
)
SIGNING_ON_BEHALF = (
    "The ordered form needs to be signed. This is not possible when the form is ordered "
    "on behalf of someone."
)
FH_NUMBER_NOT_SUPPORTED = (
    "nationalId: FH-nummer is not supported as national ID. The national ID must be either "
    "Norsk fødselsnummer or D-nummer."
)
H_NUMBER_NOT_SUPPORTED = (
    "nationalId: H-nummer is not supported as national ID. The national ID must be either "
    "Norsk fødselsnummer or D-nummer."
)
MAIN_DOCUMENT_MISSING = "Main document in MessageToCitizen is missing"


def no_such_form(form_id: str) -> str:
    return f"No form with id='{form_id}' exists"


def form_not_paper_enabled(form_id: str) -> str:
    return f"Form with id='{form_id}' is not paper enabled"


def invalid_metadata(detail: str) -> str:
    return f"JSON in metadata is not valid: {detail}"


def unknown_api_key(key: str) -> str:
    return f"apiKey '{key}' doesn't exists"


# --- Our own additions, same shape ----------------------------------------------------
MISSING_AUTHORIZATION = "Authorization header is missing: send 'Authorization: Basic <apiKey>'"
BODY_NOT_JSON = "The request body is not valid JSON"
BODY_NOT_OBJECT = "The request body must be a JSON object"
BODY_TOO_LARGE = "The request body is larger than this endpoint accepts"


def malformed_national_id(field: str, why: str) -> str:
    return f"{field}: not a valid national ID ({why}). The national ID must be either Norsk fødselsnummer or D-nummer."


class ProtocolError(Exception):
    """An error answered as HTTP `status` with the JSON body {"message": message}."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status

    def body(self) -> dict:
        return {"message": self.message}
