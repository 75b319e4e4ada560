"""Fast tests of one module or core at a time: no sockets, no processes."""
