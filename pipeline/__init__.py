"""Offline pipeline: MovieLens-format data in, a versioned artifact bundle out (`wren train`)."""
