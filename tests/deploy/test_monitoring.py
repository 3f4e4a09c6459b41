"""deploy/monitoring: the alert rules (promtool), the dashboard, the compose profile, the
Kubernetes ConfigMap, and every metric name they use against what Postier exports.

``promtool`` comes from Debian's ``prometheus`` package (``make services`` installs it). Without
it the promtool tests are skipped with the reason, unless ``POSTIER_TEST_REQUIRE_PROMTOOL`` is
set (as in ``.ci/run``): then they fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from prometheus_client import CollectorRegistry

from postier import metrics
from postier.config import Settings
from postier.dispatch.balances import BALANCES_KEY
from postier.dispatch.heartbeat import BeatHeartbeat
from postier.ledger.db import make_engine, session_scope, upgrade
from postier.ledger.models import MessageStatus
from postier.ledger.queries import insert_messages
from tests.deploy.commands import parse_command, settings_from
from tests.deploy.test_compose import REQUIRED, resolved
from tests.ledger.conftest import message_row

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
MONITORING = DEPLOY / "monitoring"
RULES = MONITORING / "rules" / "postier.rules.yml"
RULE_TESTS = MONITORING / "tests" / "postier.rules.test.yml"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "postier.json"
DATASOURCES = MONITORING / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS = MONITORING / "grafana" / "provisioning" / "dashboards" / "postier.yml"
PROMETHEUS = MONITORING / "prometheus.yml"
RUNBOOK = MONITORING / "README.md"
REQUIRE_PROMTOOL = bool(os.environ.get("POSTIER_TEST_REQUIRE_PROMTOOL"))
#: series Prometheus makes itself
PROMETHEUS_SERIES = {"up", "ALERTS", "ALERTS_FOR_STATE"}


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        reason = "no promtool: `make services` installs it (apt-get install prometheus)"
        if REQUIRE_PROMTOOL:
            pytest.fail(f"{reason} (POSTIER_TEST_REQUIRE_PROMTOOL is set)")
        pytest.skip(reason)
    return found


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=cwd)


def rules() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(RULES.read_text())
    return data


def alerts() -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in rules()["groups"] for r in g["rules"] if "alert" in r}


def recorded() -> set[str]:
    return {r["record"] for g in rules()["groups"] for r in g["rules"] if "record" in r}


# -- promtool ------------------------------------------------------------------------------------
def test_promtool_checks_the_rules(promtool: str) -> None:
    result = run(promtool, "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts()) + len(recorded())} rules found" in result.stdout


def test_promtool_unit_tests_pass(promtool: str) -> None:
    result = run(promtool, "test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_a_broken_rule_fails_its_unit_test(promtool: str, tmp_path: Path) -> None:
    """The unit tests can fail: the same tests against rules whose thresholds moved."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    text = RULES.read_text().replace("> 0.25", "> 0.75").replace("< 0.9", "< 0.5")
    (tmp_path / "rules" / RULES.name).write_text(text)
    shutil.copy(RULE_TESTS, tmp_path / "tests" / RULE_TESTS.name)
    result = run(promtool, "test", "rules", RULE_TESTS.name, cwd=tmp_path / "tests")
    assert result.returncode != 0
    assert "PostierProviderErrorRatioHigh" in result.stdout + result.stderr
    assert "PostierDeliveredRatioLow" in result.stdout + result.stderr


def test_the_compose_prometheus_config_is_valid(promtool: str, tmp_path: Path) -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    config["rule_files"] = [str(RULES)]  # where compose mounts it: /etc/prometheus/rules
    copy = tmp_path / "prometheus.yml"
    copy.write_text(yaml.safe_dump(config))
    result = run(promtool, "check", "config", str(copy))
    assert result.returncode == 0, result.stdout + result.stderr


# -- the rules' shape ----------------------------------------------------------------------------
def test_every_alert_is_tested_firing_and_not_firing() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())
    assert tests["rule_files"] == [f"../rules/{RULES.name}"]
    firing: set[str] = set()
    silent: set[str] = set()
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    assert firing == set(alerts()), "alerts never shown firing"
    assert silent == set(alerts()), "alerts never shown staying silent"


def test_every_alert_has_a_severity_a_summary_and_its_runbook_section() -> None:
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in RUNBOOK.read_text().splitlines()
        if line.startswith("#")
    }
    for name, rule in alerts().items():
        assert rule["labels"]["severity"] in {"page", "ticket"}, name
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], name
        path, anchor = annotations["runbook"].split("#")
        assert (ROOT / path) == RUNBOOK and anchor == name.lower(), name
        assert anchor in headings, f"{name}: no section in {RUNBOOK.name}"
        assert name in RULES.read_text().split("groups:")[0], f"{name}: not in the header table"


# -- metric names --------------------------------------------------------------------------------
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", re.IGNORECASE
)
_NAME = re.compile(r"(?<![\w:.])[A-Za-z_:][\w:]*")
_CALL = re.compile(r"\s*\(")
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
_KEYWORDS |= {"and", "or", "unless", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression reads (functions, labels and keywords left out)."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _RANGES.sub("", text)
    text = _GROUPING.sub("", text)
    return {
        token[0]
        for token in _NAME.finditer(text)
        if token[0].lower() not in _KEYWORDS and not _CALL.match(text, token.end())
    }


def test_metric_names_are_read_from_expressions() -> None:
    expr = (
        'sum by (provider) (rate(postier_messages_total{state=~"a|b"}[10m])) / on (provider)'
        " group_left postier:x:rate10m > 0.25 and absent(up) or time() - max(y_seconds) > 1e3"
    )
    assert metric_names(expr) == {"postier_messages_total", "postier:x:rate10m", "up", "y_seconds"}


@pytest.fixture
def exported(redis_client: redis.Redis, tmp_path: Path) -> Iterator[set[str]]:
    """Every series name Postier's workers and webhook receiver serve, from the real metric
    objects and collectors (Redis and a ledger holding what makes each family appear)."""
    url = f"sqlite:///{tmp_path}/ledger.db"
    engine = make_engine(url)
    upgrade(engine)
    with session_scope(engine) as session:
        insert_messages(session, [message_row(status=MessageStatus.QUEUED)])
    with engine.begin() as connection:
        from postier.ledger.models import messages_table

        connection.execute(messages_table.update().values(status=MessageStatus.UNKNOWN))
    BeatHeartbeat(redis_client).beat()
    redis_client.hset(BALANCES_KEY, "octopush", "euro 10 1800000000")
    registry = CollectorRegistry()
    metrics.DispatchMetrics(registry)
    ledger = metrics.LedgerCollector(url, interval=0)
    for collector in (
        metrics.QueueDepthCollector(redis_client),
        metrics.HealthCollector(redis_client, Settings(_env_file=None)),
        metrics.BeatCollector(redis_client),
        metrics.BalanceCollector(redis_client),
        ledger,
    ):
        registry.register(collector)
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    names = {
        family.name + suffix
        for family in registry.collect()
        for suffix in suffixes.get(family.type, ("",))
    }
    yield names
    ledger.engine.dispose()
    engine.dispose()


def expressions() -> dict[str, str]:
    """Every PromQL expression shipped: the rules' and the dashboard's panels'."""
    found = {
        f"rule {r.get('alert') or r.get('record')}": r["expr"]
        for g in rules()["groups"]
        for r in g["rules"]
    }
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            found[f"panel {panel['title']} {target['refId']}"] = target["expr"]
    return found


def test_every_expression_reads_only_exported_metrics(exported: set[str]) -> None:
    assert {"postier_beat_last_publish_timestamp_seconds", "postier_queue_depth"} <= exported
    assert "postier_ledger_oldest_unknown_timestamp_seconds" in exported
    known = exported | recorded() | PROMETHEUS_SERIES
    unknown = {
        where: sorted(metric_names(expr) - known)
        for where, expr in expressions().items()
        if metric_names(expr) - known
    }
    assert not unknown, f"names no Postier process exports: {unknown}"
    used = set().union(*(metric_names(e) for e in expressions().values()))
    # the signals the alerts were written for are all in use
    assert {
        "postier_provider_balance",
        "postier_queue_consumed_total",
        "postier_lane_wait_seconds_bucket",
        "postier_provider_health",
    } <= used


def test_an_unknown_name_is_caught(exported: set[str]) -> None:
    assert metric_names("max(postier_queue_length) > 0") - exported == {"postier_queue_length"}


# -- the dashboard and its provisioning ----------------------------------------------------------
def test_the_dashboard_reads_the_provisioned_datasource() -> None:
    (source,) = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] == "Postier"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": source["uid"]}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == source["uid"]
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in ("queue", "latency", "state", "retries", "rate-limit", "health", "campaign"):
        assert topic in titles, topic


def test_the_compose_profile_mounts_what_exists_and_scrapes_every_endpoint() -> None:
    compose = resolved(yaml.safe_load((DEPLOY / "compose.yaml").read_text()), REQUIRED)
    services = compose["services"]
    mounts: dict[str, str] = {}
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["monitoring"]
        for volume in services[name]["volumes"]:
            source, target, *_ = volume.split(":")
            if source.startswith("."):
                assert (DEPLOY / source).exists(), source
                mounts[target] = source
    # Prometheus loads the rules file from where the volume puts it
    config = yaml.safe_load(PROMETHEUS.read_text())
    (rule_file,) = config["rule_files"]
    folder, file = rule_file.rsplit("/", 1)
    assert (DEPLOY / mounts[folder] / file).resolve() == RULES
    assert (DEPLOY / mounts["/etc/prometheus/prometheus.yml"]).resolve() == PROMETHEUS
    # Grafana: provisioning files, and the dashboards where the provider looks
    assert (DEPLOY / mounts["/etc/grafana/provisioning"]).resolve() == DATASOURCES.parents[1]
    (provider,) = yaml.safe_load(DASHBOARD_PROVIDERS.read_text())["providers"]
    path = provider["options"]["path"]
    assert (DEPLOY / mounts[path] / DASHBOARD.name).resolve() == DASHBOARD
    # every Postier /metrics, at the port its service serves it on
    targets: dict[str, set[str]] = {}
    for job in config["scrape_configs"]:
        found = targets.setdefault(job["job_name"], set())
        for sd in job.get("dns_sd_configs", []):
            found |= {f"{n}:{sd['port']}" for n in sd["names"]}
        for static in job.get("static_configs", []):
            found |= set(static["targets"])
    served = set()
    for name in ("worker", "worker-bulk", "worker-callbacks"):
        settings = settings_from(services[name]["environment"])
        served.add(f"{name}:{settings.metrics.port}")
        assert str(settings.metrics.port) in services[name]["expose"]
    webhooks = parse_command(services["webhooks"]["command"]).params
    served.add(f"webhooks:{webhooks['port']}")
    flower = settings_from(services["flower"]["environment"])
    served.add(f"flower:{flower.flower.port}")
    assert set().union(*targets.values()) == served


def test_kubernetes_gets_the_same_rules_file(tmp_path: Path) -> None:
    kubectl = shutil.which("kubectl")
    kustomization = yaml.safe_load((MONITORING / "kustomization.yaml").read_text())
    (generator,) = kustomization["configMapGenerator"]
    (entry,) = generator["files"]
    key, source = entry.split("=")
    assert (MONITORING / source).resolve() == RULES and key == RULES.name
    if kubectl is None:
        pytest.skip("no kubectl to render deploy/monitoring (the file reference is checked)")
    result = run(kubectl, "kustomize", str(MONITORING))
    assert result.returncode == 0, result.stderr
    (config_map,) = list(yaml.safe_load_all(result.stdout))
    assert config_map["kind"] == "ConfigMap"
    assert config_map["data"][key] == RULES.read_text()
