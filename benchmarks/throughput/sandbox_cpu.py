"""The sandbox's own CPU per request, per provider send (``-m benchmarks.throughput.sandbox_cpu``).

Starts ``postier sandbox`` as a child process, sends it ``--requests`` sends of one kind over one
keep-alive connection (``http.client``, from this process), and reads the sandbox's user +
system CPU from ``/proc/<pid>/stat`` before and after. Every answer is checked: a refused send
would measure the refusal path, not the send. The figure is what every benchmark pays on the
provider side of each request (the sandbox shares the machine with the workers measured).
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

from benchmarks.throughput import procfs
from benchmarks.throughput.baseline import octopush_form
from benchmarks.throughput.provider import SEND_PATH, SandboxProcess
from postier.sandbox.accounts import SANDBOX_ACCOUNTS

#: one request: method, path, body, headers
Request = tuple[str, str, bytes, dict[str, str]]
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON = {"Content-Type": "application/json"}


def _number(index: int) -> str:
    return f"+336{10_000_000 + index:08d}"


def octopush_legacy(index: int) -> Request:
    form = octopush_form(_number(index), f"Bonjour {index}, votre code est {index % 9973}")
    return "POST", SEND_PATH, urlencode(form).encode(), FORM


def octopush_v1(index: int) -> Request:
    body = {
        "recipients": [{"phone_number": _number(index)}],
        "text": f"Bonjour {index}, votre code est {index % 9973}",
        "type": "sms_premium",
        "purpose": "alert",
        "sender": "Postier",
    }
    headers = {
        **JSON,
        "api-login": SANDBOX_ACCOUNTS.octopush_login,
        "api-key": SANDBOX_ACCOUNTS.octopush_api_key,
    }
    return "POST", "/v1/public/sms-campaign/send", json.dumps(body).encode(), headers


def primotexto(index: int) -> Request:
    body = {
        "number": _number(index),
        "message": f"Bonjour {index}, votre code est {index % 9973}",
        "sender": "Postier",
    }
    headers = {**JSON, "X-Primotexto-ApiKey": SANDBOX_ACCOUNTS.primotexto_api_key}
    return "POST", "/v2/notification/messages/send", json.dumps(body).encode(), headers


def afilnet_whatsapp(index: int) -> Request:
    form = {
        "class": "whatsapp",
        "method": "sendmessage",
        "user": SANDBOX_ACCOUNTS.afilnet_user,
        "password": SANDBOX_ACCOUNTS.afilnet_password,
        "platformid": SANDBOX_ACCOUNTS.afilnet_platform_id,
        "destination": _number(index)[1:],
        "message": f"Bonjour {index}, votre code est {index % 9973}",
    }
    return "POST", "/api/http/", urlencode(form).encode(), FORM


def _accepted(kind: str, status: int, body: bytes) -> bool:
    if kind == "octopush_legacy":
        return status == 200 and json.loads(body).get("error_code") == "000"
    if kind == "octopush_v1":
        return status == 201
    if kind == "afilnet_whatsapp":
        return status == 200 and json.loads(body).get("status") == "success"
    return status == 200 and "snapshotId" in json.loads(body)


KINDS: dict[str, Callable[[int], Request]] = {
    "octopush_legacy": octopush_legacy,
    "octopush_v1": octopush_v1,
    "primotexto": primotexto,
    "afilnet_whatsapp": afilnet_whatsapp,
}


def measure(sandbox: SandboxProcess, kind: str, requests: int, *, start: int = 0) -> float:
    """The sandbox's CPU milliseconds per request over ``requests`` sends of ``kind``."""
    make = KINDS[kind]
    bodies = [make(start + i) for i in range(requests)]
    connection = http.client.HTTPConnection("127.0.0.1", sandbox.port, timeout=30)
    # one request first, so the connection is open and every import done before measuring
    method, path, body, headers = make(start + requests)
    connection.request(method, path, body, headers)
    connection.getresponse().read()
    before = procfs.cpu_seconds(sandbox.pid)
    for method, path, body, headers in bodies:
        connection.request(method, path, body, headers)
        answer = connection.getresponse()
        data = answer.read()
        if not _accepted(kind, answer.status, data):
            raise RuntimeError(f"{kind}: refused ({answer.status}): {data[:300]!r}")
    after = procfs.cpu_seconds(sandbox.pid)
    connection.close()
    return (after - before) * 1000 / requests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3_000)
    parser.add_argument("--rounds", type=int, default=3, help="repeats of each kind (median)")
    parser.add_argument("kinds", nargs="*", help=f"any of {', '.join(KINDS)} (default: all)")
    args = parser.parse_args(argv)
    unknown = set(args.kinds) - set(KINDS)
    if unknown:
        parser.error(f"unknown kinds: {sorted(unknown)}")
    with tempfile.TemporaryDirectory(prefix="sandbox-cpu-") as workdir:
        sandbox = SandboxProcess(Path(workdir)).start()
        try:
            offset = 0
            for kind in args.kinds or list(KINDS):
                figures = []
                for _ in range(args.rounds):
                    figures.append(measure(sandbox, kind, args.requests, start=offset))
                    offset += args.requests + 1
                    sandbox.reset()
                    time.sleep(0.2)
                figures.sort()
                shown = ", ".join(f"{f:.3f}" for f in figures)
                print(f"{kind:18} {figures[len(figures) // 2]:.3f} ms/request  ({shown})")
        finally:
            sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
