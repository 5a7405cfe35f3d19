"""The ``keel`` command line: one Typer sub-app per command group, thin over the SDK.

``keel.cli.main`` composes the groups; each module here parses arguments, calls the SDK
and formats the answer (Rich tables for people, one JSON document with ``--json``).
"""
