"""Tests of one tier or the pipeline against real parts: gRPC over loopback, a private redis-server, training runs."""
