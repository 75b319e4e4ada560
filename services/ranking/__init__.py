"""Ranking tier: scores candidate batches with an ONNX CTR model."""
