"""Logging that never writes a secret: callback tokens and keyframe tokens in URL paths are cut out of every record."""

import logging
import re

# /webhooks/luma/<token>/, /k/<token>/ (uploads Luma fetches), /files/<token>/ and /s/<token>/ (share links): the
# token is the credential, so logs keep only its first characters.
SECRET_PATH = re.compile(r"(/webhooks/luma/|/k/|/files/|/s/)([A-Za-z0-9_\-]{4})[A-Za-z0-9_\-]+")


def redact(text: str) -> str:
    return SECRET_PATH.sub(r"\1\2…", text)


class RedactTokens(logging.Filter):
    """Rewrites the record's message with tokens cut; attached to the console handler, so it sees every logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        # Django's request loggers keep the request object; its path is only formatted if a handler asks for it.
        return True
