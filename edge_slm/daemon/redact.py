"""Credentials are never printed: broker URLs with their password masked, and a logging filter
that hides every password edge-slm has read.

    redact_url("mqtt://edge:secret@hub:1883")    # 'mqtt://edge:***@hub:1883'
    redact("cannot reach mqtt://edge:secret@hub") # the same, for URLs inside any text
    remember_secret(password)                     # parse_broker_url does this for each password
    handler.addFilter(RedactingFilter())          # the command lines' log handlers

The URL masking works on text that is not a valid URL too (an error about a broken one): the
user part ends at the URL's last `@`, so a password holding `/` or `@` is masked whole. The
filter replaces each remembered password (at least `MIN_SECRET_CHARS` long, so that a short
one does not mask every such word of a log) in the formatted message of each record, for
records of any library (paho included). Stdlib only.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Set

MASK = "***"
"""What a password is shown as."""
MIN_SECRET_CHARS = 4
"""Shorter passwords are not masked by the log filter (URLs are masked whatever the length)."""
_URL = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)(\S*)")
_SECRETS: Set[str] = set()
_LOCK = threading.Lock()


def redact_url(url: str) -> str:
    """`url` with the password of its user part masked (`user:***@host`); unchanged without
    one. Works on a URL that does not parse."""
    return _URL.sub(_mask, url)


def _mask(match: "re.Match[str]") -> str:
    scheme, rest = match.group(1), match.group(2)
    # the user part ends at the last @ before the host; a password may hold / or @
    user, at, host = rest.rpartition("@")
    if not at:
        return match.group(0)
    name, colon, _ = user.partition(":")
    name = name.split("/")[0]
    return f"{scheme}{name}{':' + MASK if colon else ''}@{host}"


def remember_secret(secret: str) -> None:
    """Hide `secret` from every log record that passes a RedactingFilter from now on."""
    if isinstance(secret, str) and len(secret) >= MIN_SECRET_CHARS:
        with _LOCK:
            _SECRETS.add(secret)


def redact(text: str) -> str:
    """`text` with URL passwords and every remembered secret masked."""
    text = redact_url(text)
    with _LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)  # a longer one holding a shorter
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


class RedactingFilter(logging.Filter):
    """Masks passwords in every record it sees (its message formatted first); never drops
    one. Put it on a handler, so that it sees the records of every logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot be formatted: leave it to the handler
            return True
        clean = redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install(logger: logging.Logger) -> None:
    """Add a RedactingFilter to each handler of `logger` (the root logger: every record)."""
    for handler in logger.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
