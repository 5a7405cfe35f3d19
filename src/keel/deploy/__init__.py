"""Deployments: named endpoints that route traffic to model versions by strategy."""
