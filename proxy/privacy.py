"""What may leave the proxy in an error message or a log line: national ids only masked, secrets never."""
from __future__ import annotations

from typing import Iterable

from eprom_protocol.national_id import mask_in_text


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """The text with every national id masked (birth date kept, as in the simulator's logs; also when written
    with a separator) and every given secret replaced by ***."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return mask_in_text(text)
