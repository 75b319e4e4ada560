"""Wren: a deep-learning recommender served as gRPC microservices."""

__version__ = "0.1.0"
