"""Feature tier: user and item features from an embedded store or Redis, with real-time events."""
