"""Keel's server: the REST API of every domain, the web UI, health and metrics."""

from keel.server.app import create_app

__all__ = ["create_app"]
