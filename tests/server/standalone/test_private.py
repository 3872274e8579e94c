"""The ports of a private stack (:mod:`server.standalone.private`)."""

from __future__ import annotations

import socket

from server.standalone import private
from server.standalone.private import ephemeral_port_range, free_ports


def test_ports_are_distinct_free_and_below_the_ephemeral_range():
    ports = free_ports(9)
    assert len(set(ports)) == 9 and ports == sorted(ports)
    assert all(private.SERVICE_PORT_FLOOR <= p < ephemeral_port_range()[0] for p in ports)
    for port in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_an_unusual_ephemeral_range_leaves_the_choice_to_the_kernel(monkeypatch):
    monkeypatch.setattr(private, "ephemeral_port_range", lambda: (1024, 65535))
    ports = free_ports(3)
    assert len(set(ports)) == 3 and all(p > 0 for p in ports)
