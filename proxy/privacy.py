"""What may leave the proxy in an error message or a log line: national ids only masked, secrets never."""
from __future__ import annotations

import re
from typing import Iterable

from eprom_protocol.national_id import mask

#: Eleven digits not part of a longer number: how a national id looks inside free text.
ELEVEN_DIGITS = re.compile(r"(?<!\d)\d{11}(?!\d)")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """The text with every national id masked (birth date kept, as in the simulator's logs) and every
    given secret replaced by ***."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return ELEVEN_DIGITS.sub(lambda m: mask(m.group(0)), text)
