"""Nearline tier: a Redis Streams consumer turning events into fresh online features and a training log."""
