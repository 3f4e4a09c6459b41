"""The support page (``/support/``), served by ``postier api``: ``pages`` (routes and
templates), ``session`` (sign-in with an API key, the signed session cookie)."""

from postier.api.support.pages import SupportPages

__all__ = ["SupportPages"]
