"""Switchboard dev and test tooling: what runs the suite on a laptop and in CI, never in production.

``manifest`` reads ``suite.toml`` (the services of the suite), ``launcher`` starts them
(``make run``, the e2e tests), ``infra`` is the embedded PostgreSQL and Kafka-protocol broker,
``export`` writes ``openapi/`` and ``contracts/``, ``testing`` holds shared test helpers.
The runtime kit (``switchboard_kit``) depends on none of it.
"""
