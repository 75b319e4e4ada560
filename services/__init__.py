"""Wren's online tiers: feature, recall, ranking and the gateway, over one shared common package."""
