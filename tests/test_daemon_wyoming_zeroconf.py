"""Zeroconf announcement of the Wyoming service: the real `zeroconf` package registers
`NAME._wyoming._tcp.local.` at this machine's address and unregisters it on close; without
the package, or on a loopback address, the service is not announced and the log says why
once, and the server still runs."""

from __future__ import annotations

import logging
import os
import sys

import pytest

from edge_slm.daemon import DaemonConfig
from edge_slm.daemon.served import ServedEngine
from edge_slm.daemon.wyoming_handler import WyomingHandler
from edge_slm.daemon.wyoming_server import WyomingServer, WyomingService
from edge_slm.daemon.wyoming_zeroconf import SERVICE_TYPE, announce, announce_address
from edge_slm.runtime.engine import IntentEngine


@pytest.fixture
def no_zeroconf(monkeypatch):
    """`import zeroconf` fails as it does where the package is not installed."""
    monkeypatch.setitem(sys.modules, "zeroconf", None)


def test_without_the_package_the_log_says_so_once(no_zeroconf, caplog):
    with caplog.at_level(logging.WARNING, logger="edge_slm.daemon.wyoming_zeroconf"):
        assert announce("edge-slm", "0.0.0.0", 10500) is None
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "zeroconf is not installed" in said[0]
    assert "edge-slm[wyoming]" in said[0]


def test_a_service_without_zeroconf_still_serves(no_zeroconf, caplog):
    server = WyomingServer(WyomingHandler(ServedEngine(IntentEngine.load()), DaemonConfig()),
                           "127.0.0.1", 0)
    service = WyomingService(server, "edge-slm")
    with caplog.at_level(logging.WARNING):
        service.start()
    try:
        assert service.announcement is None and server.port > 0
        assert sum("not installed" in r.getMessage() for r in caplog.records) == 1
    finally:
        service.stop()


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_a_loopback_address_is_not_announced(host):
    assert announce_address(host) is None


def test_addresses_announced():
    assert announce_address("192.0.2.7") == "192.0.2.7"
    assert announce_address("fd00::7") == "fd00::7"
    wildcard = announce_address("0.0.0.0")
    assert wildcard is None or not wildcard.startswith("127.")


def test_a_loopback_server_is_not_announced_and_the_log_says_why(caplog):
    pytest.importorskip("zeroconf")
    with caplog.at_level(logging.WARNING, logger="edge_slm.daemon.wyoming_zeroconf"):
        assert announce("edge-slm", "127.0.0.1", 10500) is None
    assert "loopback" in caplog.text


def test_the_service_is_registered_and_withdrawn():
    pytest.importorskip("zeroconf")
    if announce_address("0.0.0.0") is None:
        pytest.skip("this machine has no non-loopback address to announce")
    name = f"edge-slm-test-{os.getpid()}"
    announcement = announce(name, "0.0.0.0", 10599)
    assert announcement is not None
    try:
        assert announcement.name == f"{name}.{SERVICE_TYPE}"
        registry = announcement.zeroconf.registry
        info = registry.async_get_info_name(announcement.name.lower())
        assert info is not None and info.port == 10599 and info.type == SERVICE_TYPE
        assert info.parsed_addresses() == [announce_address("0.0.0.0")]
    finally:
        announcement.close()
    assert registry.async_get_info_name(announcement.name.lower()) is None
