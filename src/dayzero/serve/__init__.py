"""Serving: HTTP service and vector index over item vectors."""
