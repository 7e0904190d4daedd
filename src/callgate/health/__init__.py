"""Liveness endpoint for operators, load balancers and the benchmark."""
