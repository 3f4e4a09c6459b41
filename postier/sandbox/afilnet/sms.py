"""Simulated Afilnet class=sms and class=user (to be filled)."""

from __future__ import annotations

from typing import Any

METHODS: dict[str, Any] = {}
USER_METHODS: dict[str, Any] = {}
