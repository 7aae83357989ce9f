"""No secret reaches a log line: callback and keyframe tokens are cut out of everything the console handler writes."""

import io
import json
import logging

import pytest
from django.test import Client

from generations.logs import RedactTokens
from generations.models import Generation, Kind

pytestmark = pytest.mark.django_db


def test_tokens_never_reach_a_log_line(alice):
    row, _ = Generation.request(alice, kind=Kind.TEXT_TO_VIDEO, prompt="a teddy bear")
    handler = next(h for h in logging.getLogger().handlers if any(isinstance(f, RedactTokens) for f in h.filters))
    stream = io.StringIO()
    old = handler.setStream(stream)
    url = f"/webhooks/luma/{row.callback_token}/"
    try:
        client = Client()
        client.post(url, data=json.dumps({"id": "x", "padding": "x" * (257 * 1024)}), content_type="application/json")
        client.post(url, data="{not json", content_type="application/json")  # 400, logged as a bad request
        client.get("/k/this-keyframe-token-is-unknown/")  # 404, logged
        client.get("/s/this-share-token-is-unknown/")  # 404, logged
    finally:
        handler.setStream(old)

    logged = stream.getvalue()
    assert "Request Entity Too Large" in logged and "Bad Request" in logged and "Not Found" in logged
    assert row.callback_token not in logged and row.callback_token[:8] not in logged
    assert "this-keyframe-token-is-unknown" not in logged and "this-share-token-is-unknown" not in logged
