"""Vector index backends (HNSW, exact, LSH) behind one interface."""
