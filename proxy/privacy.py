"""What may leave the proxy in an error message or a log line: national ids only masked, secrets never."""
from __future__ import annotations

from typing import Iterable
from urllib.parse import urlsplit, urlunsplit

from eprom_protocol.national_id import mask_in_text


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """The text with every national id masked (birth date kept, as in the simulator's logs; also when written
    with a separator) and every given secret replaced by ***."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return mask_in_text(text)


def shown_url(url: str) -> str:
    """A URL as it may be printed: a password in it replaced by ***, national ids in it masked."""
    try:
        parts = urlsplit(url)
        if parts.password is not None:
            host = parts.netloc.rpartition("@")[2]
            parts = parts._replace(netloc=f"{parts.username}:***@{host}")
        url = urlunsplit(parts)
    except ValueError:  # not a URL one can split: only the masking
        pass
    return mask_in_text(url)
