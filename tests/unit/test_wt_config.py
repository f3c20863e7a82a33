"""ClientConfig, ClientStats and the URL helpers of webwire.webtransport."""

from __future__ import annotations

import math
import ssl

import pytest

from webwire import InvalidURL, WebwireError
from webwire.webtransport import (
    ClientConfig,
    ClientStats,
    ConfigurationError,
    parse_webtransport_url,
    validate_url,
)


def test_defaults_are_safe() -> None:
    config = ClientConfig()
    assert config.verify_mode == ssl.CERT_REQUIRED
    assert config.tls_verify() is True
    assert config.tls_cert() is None
    assert config.connect_timeout == 30.0
    assert config.auto_reconnect is False
    assert config.max_retries == 3
    assert config.request_headers()["user-agent"].startswith("webwire/")


def test_headers_are_lower_cased_and_user_agent_kept() -> None:
    config = ClientConfig(headers={"X-Token": "a"}, user_agent="agent/1")
    assert config.headers == {"x-token": "a"}
    assert config.request_headers() == {"x-token": "a", "user-agent": "agent/1"}
    explicit = ClientConfig(headers={"User-Agent": "mine"})
    assert explicit.request_headers()["user-agent"] == "mine"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("connect_timeout", 0),
        ("connect_timeout", -1.0),
        ("connect_timeout", None),
        ("connect_timeout", math.inf),
        ("connect_timeout", "5"),
        ("read_timeout", 0),
        ("close_timeout", True),
        ("max_retries", -1),
        ("max_retries", 1.5),
        ("retry_delay", 0),
        ("retry_backoff", 0.5),
        ("max_retry_delay", -3),
        ("max_streams", 0),
        ("max_datagram_size", 0),
        ("max_datagram_size", 65536),
        ("stream_buffer_size", 0),
        ("max_stream_buffer_size", 10),
        ("flow_control_window_size", 0),
        ("initial_max_data", -1),
        ("auto_reconnect", "yes"),
        ("verify_mode", 7),
        ("ca_certs", "/nonexistent/ca.pem"),
        ("certfile", "/nonexistent/cert.pem"),
        ("headers", {"bad name": "x"}),
        ("headers", {"x-a": "one\r\ntwo"}),
        ("headers", {":path": "/"}),
        ("user_agent", "a\nb"),
    ],
)
def test_invalid_values_raise_configuration_error(key: str, value: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        ClientConfig(**{key: value})  # type: ignore[arg-type]
    assert isinstance(info.value, WebwireError)
    assert isinstance(info.value, ValueError)
    assert info.value.key == key
    assert key in str(info.value)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("stream_creation_timeout", 5.0),
        ("max_streams", 10),
        ("max_incoming_streams", 10),
        ("max_datagram_size", 1200),
        ("flow_control_window_size", 4 * 1024 * 1024),
        ("initial_max_data", 1024),
        ("initial_max_streams_bidi", 4),
        ("initial_max_streams_uni", 4),
        ("max_stream_buffer_size", 256 * 1024),
    ],
)
def test_applied_fields_accept_other_values(key: str, value: object) -> None:
    config = ClientConfig(**{key: value})  # type: ignore[arg-type]
    assert getattr(config, key) == value
    assert ClientConfig.from_dict(config.to_dict()) == config


def test_session_limits_from_config() -> None:
    from webwire.webtransport._connect import _session_limits

    config = ClientConfig(
        max_streams=3, max_incoming_streams=5, stream_creation_timeout=0.5, max_datagram_size=900
    )
    assert _session_limits(config) == {
        "max_incoming": 5,
        "max_local_streams": 3,
        "creation_timeout": 0.5,
        "datagram_limit": 900,
        "stream_buffer_limit": 4 * 1024 * 1024,
    }
    assert _session_limits(None) == {"max_incoming": 128}


def test_windows_from_config() -> None:
    from webwire._proto import webtransport as wt
    from webwire.webtransport._connect import _windows

    stream, connection, settings = _windows(ClientConfig())
    assert (stream, connection) == (2 * 1024 * 1024, 8 * 1024 * 1024)
    assert settings[wt.SETTINGS_WT_INITIAL_MAX_DATA] == 8 * 1024 * 1024
    assert settings[wt.SETTINGS_WT_INITIAL_MAX_STREAMS_BIDI] == 100
    config = ClientConfig(
        flow_control_window_size=1 << 20, initial_max_streams_bidi=3, initial_max_streams_uni=5
    )
    stream, connection, settings = _windows(config)
    assert (stream, connection) == (1 << 20, 1 << 20)
    assert settings == {
        wt.SETTINGS_WT_ENABLED: 1,
        wt.SETTINGS_WT_INITIAL_MAX_DATA: 1 << 20,
        wt.SETTINGS_WT_INITIAL_MAX_STREAMS_BIDI: 3,
        wt.SETTINGS_WT_INITIAL_MAX_STREAMS_UNI: 5,
    }
    # initial_max_data, when set, wins over flow_control_window_size.
    assert _windows(ClientConfig(initial_max_data=300_000))[1] == 300_000


def test_optional_timeouts_accept_none() -> None:
    config = ClientConfig(read_timeout=None, write_timeout=None)
    assert config.read_timeout is None


def test_keyfile_needs_certfile(tmp_path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("k")
    with pytest.raises(ConfigurationError, match="needs certfile"):
        ClientConfig(keyfile=str(key))


def test_tls_settings_map_to_verify_and_cert(tmp_path) -> None:
    ca = tmp_path / "ca.pem"
    cert = tmp_path / "cert.pem"
    key = tmp_path / "key.pem"
    for path in (ca, cert, key):
        path.write_text("x")
    config = ClientConfig(ca_certs=str(ca), certfile=str(cert), keyfile=str(key))
    assert config.tls_verify() == str(ca)
    assert config.tls_cert() == (str(cert), str(key))
    assert ClientConfig(certfile=str(cert)).tls_cert() == str(cert)
    assert ClientConfig(verify_mode=ssl.CERT_NONE, ca_certs=str(ca)).tls_verify() is False
    assert ClientConfig(verify_mode=None).tls_verify() is True


def test_to_dict_from_dict_round_trip() -> None:
    config = ClientConfig(verify_mode=ssl.CERT_NONE, headers={"a": "1"}, max_retries=7)
    data = config.to_dict()
    assert data["verify_mode"] == "CERT_NONE"
    assert data["headers"] == {"a": "1"}
    again = ClientConfig.from_dict(data)
    assert again == config
    data["headers"]["a"] = "2"
    assert config.headers == {"a": "1"}


def test_from_dict_rejects_unknown_keys_and_bad_verify_names() -> None:
    with pytest.raises(ConfigurationError, match="unknown configuration key"):
        ClientConfig.from_dict({"connect_timout": 3})
    with pytest.raises(ConfigurationError, match="verify_mode"):
        ClientConfig.from_dict({"verify_mode": "CERT_MAYBE"})


def test_create_update_merge() -> None:
    base = ClientConfig.create(connect_timeout=5.0, headers={"a": "1"})
    assert base.connect_timeout == 5.0
    updated = base.update(max_retries=9)
    assert (updated.max_retries, base.max_retries) == (9, 3)
    merged = base.merge(ClientConfig(retry_delay=0.5, headers={"b": "2"}))
    assert merged.retry_delay == 0.5
    assert merged.connect_timeout == 5.0
    assert merged.headers == {"a": "1", "b": "2"}
    merged = base.merge({"headers": {"A": "3"}, "auto_reconnect": True})
    assert merged.headers == {"a": "3"}
    assert merged.auto_reconnect is True
    with pytest.raises(ConfigurationError):
        base.merge({"nope": 1})
    with pytest.raises(ConfigurationError):
        base.update(retry_backoff=0.1)
    with pytest.raises(TypeError):
        base.merge(42)  # type: ignore[arg-type]


def test_copy_is_deep() -> None:
    config = ClientConfig(headers={"a": "1"})
    clone = config.copy()
    clone.headers["a"] = "2"
    assert config.headers == {"a": "1"}


def test_stats_counters_and_dict() -> None:
    stats = ClientStats()
    assert stats.success_rate == 1.0
    assert stats.avg_connect_time == 0.0
    assert stats.to_dict()["performance"]["min_connect_time"] == 0.0
    stats.connections_attempted = 4
    stats.record_success(0.5)
    stats.record_success(1.5)
    stats.connections_failed = 2
    assert stats.success_rate == 0.5
    assert stats.avg_connect_time == 1.0
    data = stats.to_dict()
    assert data["connections"] == {
        "attempted": 4, "successful": 2, "failed": 2, "success_rate": 0.5,
    }
    assert data["performance"] == {
        "avg_connect_time": 1.0, "min_connect_time": 0.5, "max_connect_time": 1.5,
    }
    assert data["uptime"] >= 0


@pytest.mark.parametrize(
    ("url", "parts"),
    [
        ("https://example.com/wt", ("example.com", 443, "/wt")),
        ("https://example.com:4433/echo?x=1", ("example.com", 4433, "/echo?x=1")),
        ("https://[::1]:8443", ("::1", 8443, "/")),
    ],
)
def test_parse_url(url: str, parts: tuple[str, int, str]) -> None:
    assert parse_webtransport_url(url) == parts
    assert validate_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/",
        "wss://example.com/",
        "https:///path",
        "https://example.com/#frag",
        "https://user:pw@example.com/",
        "https://example.com/a\r\nb",
        "https://exa mple.com/",
        "not a url",
    ],
)
def test_invalid_urls(url: str) -> None:
    assert not validate_url(url)
    with pytest.raises(InvalidURL):
        parse_webtransport_url(url)
