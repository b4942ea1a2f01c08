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


def _id_kind_not_supported(kind: str, field: str) -> str:
    return (f"{field}: {kind} is not supported as national ID. The national ID must be either "
            "Norsk fødselsnummer or D-nummer.")


def fh_number_not_supported(field: str = "nationalId") -> str:
    """ePROM's text names nationalId; another field holding an FH-nummer is named instead."""
    return _id_kind_not_supported("FH-nummer", field)


def h_number_not_supported(field: str = "nationalId") -> str:
    """As fh_number_not_supported, for an H-nummer."""
    return _id_kind_not_supported("H-nummer", field)


MAIN_DOCUMENT_MISSING = "Main document in MessageToCitizen is missing"
# The delivery partner (Helsenorge) failing a message to a citizen: 504 and 502.
DELIVERY_PARTNER_TIMEOUT = "Timeout while waiting for response from Helsenorge"
DELIVERY_PARTNER_UNREACHABLE = "Unable to communicate with Helsenorge. No message sent."
#: "Utsending av brev / melding til innbygger støtter PDF-filer på opp til 30MB": per document, decoded.
MAX_MESSAGE_DOCUMENT_BYTES = 30 * 1024 * 1024
#: A signed document stays downloadable at least this many days after signing.
SIGNED_DOCUMENT_DAYS = 30


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


def body_not_json(detail: str) -> str:
    """BODY_NOT_JSON with what is wrong (eprom_protocol.json_text says it, without echoing the body)."""
    return f"{BODY_NOT_JSON}: {detail}"


def no_signed_document(document_id: str) -> str:
    """The same text whether the document never existed, belongs to someone else or is gone: no leak."""
    return f"No signed document with id '{document_id}'"


def document_too_large(where: str, size: int) -> str:
    return (f"{where}: the document is {size} bytes; a document may be at most {MAX_MESSAGE_DOCUMENT_BYTES} bytes "
            f"(30 MB)")


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
