"""Pydantic request models of the REST API, one module per domain."""
