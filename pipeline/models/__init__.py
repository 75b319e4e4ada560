"""PyTorch CTR ranking models, their training loop, ONNX export and the logistic-regression baseline."""
