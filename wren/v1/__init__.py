"""Generated gRPC/protobuf code for the wren.v1 API (regenerate with `make protos`)."""
