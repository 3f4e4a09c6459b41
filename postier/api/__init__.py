"""The HTTP API: ``postier api`` serves the producers over HTTP, behind hashed API keys.

``app`` (routes, FastAPI), ``guard`` (bearer key, rate limit, body size), ``keys`` (making,
listing, revoking and checking keys), ``idempotency`` (the ``Idempotency-Key`` header),
``problems`` (RFC 9457 answers), ``schemas`` (bodies and the OpenAPI document), ``cli``
(``postier api-key``).
"""
