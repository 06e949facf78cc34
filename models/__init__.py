"""Training, ONNX export and validation, and the model registry."""
