"""Code every Wren service shares: server bootstrap, interceptors, config, caches, logs, bundle access."""
