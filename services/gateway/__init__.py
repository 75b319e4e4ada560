"""Gateway: public API, consistent-hash routing to the tiers, orchestration, fallbacks, caches."""
