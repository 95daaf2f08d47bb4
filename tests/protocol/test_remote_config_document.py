"""The remote config document: the envelope both sides agree on, and the sections that may travel."""

from __future__ import annotations

import pytest

from vardkoll.protocol.remote_config import ConfigDocumentError, check_sections, decode_config_document, encode_config_document


def test_a_document_round_trips():
    payload = encode_config_document(" 2026-11-23.2 ", {"publisher": {"max_events_per_s": 100}})
    assert decode_config_document(payload) == ("2026-11-23.2", {"publisher": {"max_events_per_s": 100}})


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"not json", "not JSON"),
        (b'{"v": 2, "version": "1", "config": {}}', '"v": 1'),
        (b'{"v": 1, "config": {}}', '"version"'),
        (b'{"v": 1, "version": "1", "config": []}', 'version 1: the config document needs a "config" object'),
    ],
)
def test_a_broken_envelope_names_the_rule(payload, message):
    with pytest.raises(ConfigDocumentError, match=message):
        decode_config_document(payload)


def test_local_sections_and_passwords_do_not_travel():
    with pytest.raises(ConfigDocumentError, match="version 3: outbox, unit cannot be set remotely"):
        check_sections({"unit": "x", "outbox": {}}, "3")
    with pytest.raises(ConfigDocumentError, match="mqtt.password cannot be sent over MQTT") as refused:
        encode_config_document("4", {"mqtt": {"password": "hemligt"}})
    assert "hemligt" not in str(refused.value)
