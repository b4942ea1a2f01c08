"""The last line of defence on the log handlers of the proxy and the harness (proxy.privacy.RedactingFilter):
national ids masked in a record's message, and in the traceback and stack it carries too."""
from __future__ import annotations

import io
import logging

import pytest

from proxy.privacy import RedactingFilter

PATIENT = "26670271527"  # synthetic (month + 65)


@pytest.fixture
def logged():
    """A logger with two handlers, each with the filter and its own format; yields (logger, what each wrote)."""
    logger = logging.getLogger("tests.redacting_filter")
    logger.propagate, logger.level = False, logging.INFO
    streams = [io.StringIO(), io.StringIO()]
    for stream, form in zip(streams, ("%(levelname)s %(message)s", "%(name)s: %(message)s")):
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter(form))
        handler.addFilter(RedactingFilter())
        logger.addHandler(handler)
    yield logger, lambda: [stream.getvalue() for stream in streams]
    for handler in list(logger.handlers):
        logger.removeHandler(handler)


def test_an_exception_logged_has_its_text_masked_too(logged):
    logger, written = logged
    try:
        int(PATIENT + "x")
    except ValueError:
        logger.exception("could not read %s", PATIENT)
    for text in written():
        assert "could not read 266702*****" in text
        assert "ValueError: invalid literal for int() with base 10: '266702*****x'" in text, text
        assert PATIENT not in text


def test_a_stack_logged_has_its_text_masked_too(logged):
    logger, written = logged
    logger.warning("here", stack_info=True)  # the stack shows this line, so: 26670271527
    for text in written():
        assert "Stack (most recent call last)" in text and "so: 266702*****" in text, text
        assert PATIENT not in text
