"""The whole stack as separate processes, as users run it: HTTP, gRPC, Prometheus, the browser."""
