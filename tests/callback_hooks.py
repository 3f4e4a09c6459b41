"""A ``module:function`` callback target for the integration tests, run in the callbacks
worker's process: it appends each event to the file the test names in its environment."""

from __future__ import annotations

import json
import os
from typing import Any

#: the environment variable naming the file (the test sets it before starting the stack)
HOOK_FILE_VARIABLE = "POSTIER_TEST_CALLBACK_HOOK_FILE"


def record_event(event: dict[str, Any]) -> None:
    """Append ``event`` as one JSON line."""
    with open(os.environ[HOOK_FILE_VARIABLE], "a", encoding="utf-8") as out:
        out.write(json.dumps(event) + "\n")
