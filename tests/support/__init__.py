"""Helpers the tests share: data fixtures, a private redis-server, ports, deploy file readers."""
