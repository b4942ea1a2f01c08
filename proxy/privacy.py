"""What may leave the proxy in an error message or a log line: national ids only masked, secrets never."""
from __future__ import annotations

import logging
from typing import Iterable

from eprom_protocol.national_id import mask_in_text


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """The text with every national id masked (birth date kept, as in the simulator's logs; also when written
    with a separator) and every given secret replaced by ***."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return mask_in_text(text)


_TRACEBACKS = logging.Formatter()  # formats an exception as every standard formatter does


class RedactingFilter(logging.Filter):
    """Last line of defence on the log handlers of the proxy and the harness: anything written like a national
    id is masked, in the message and in the traceback and stack a record carries. (The code logs no national id
    unmasked and no answer data in the first place; tests/integration/proxy checks it.)"""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: let logging report it as usual
            return True
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:  # formatted once, here: formatters reuse exc_text
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def redact_handlers() -> None:
    """Mask national ids in whatever reaches the root logger's handlers (the records of every logger that
    propagates, werkzeug's included): `proxy serve`, the WSGI entry and `eprox-harness` alike."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
