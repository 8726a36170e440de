"""docker-compose.yml and its Prometheus/Grafana wiring stay consistent with the code."""

from __future__ import annotations

import re

import pytest
from redis.connection import parse_url
from ruamel.yaml import YAML

from engine.config import TactSettings
from tests.conftest import REPO

yaml = YAML(typ="safe")


def test_compose_has_the_whole_stack() -> None:
    compose = yaml.load((REPO / "docker-compose.yml").read_text())
    assert {"kafka", "redis", "worker", "campaigns", "prometheus", "grafana"} <= set(
        compose["services"])
    for mount in compose["services"]["prometheus"]["volumes"] + compose["services"]["grafana"][
        "volumes"
    ]:
        host = mount.split(":")[0]
        assert (REPO / host).exists(), f"compose mounts {host}, which is missing"
    assert (REPO / "Dockerfile").exists()


def test_compose_worker_settings_are_real_settings() -> None:
    compose = yaml.load((REPO / "docker-compose.yml").read_text())
    known = {f"TACT_{name.upper()}" for name in TactSettings.model_fields}
    for svc in ("worker", "campaigns", "webhook"):
        for var in compose["services"][svc]["environment"]:
            assert var in known, f"{svc} sets {var}, which TactSettings does not read"


def test_prometheus_scrapes_the_worker_port() -> None:
    compose = yaml.load((REPO / "docker-compose.yml").read_text())
    port = compose["services"]["worker"]["environment"]["TACT_WEB_PORT"]
    prom = yaml.load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    targets = prom["scrape_configs"][0]["static_configs"][0]["targets"]
    assert targets == [f"worker:{port}"]


def _mount_target(service: dict[str, object], host: str) -> str:
    """The container path where a compose service mounts the host path ``host``."""
    for mount in service["volumes"]:  # type: ignore[attr-defined]
        parts = mount.split(":")
        if (REPO / parts[0]).resolve() == (REPO / host).resolve():
            return str(parts[1])
    raise AssertionError(f"{host} is not mounted")


def test_prometheus_config_is_mounted_where_prometheus_reads_it() -> None:
    compose = yaml.load((REPO / "docker-compose.yml").read_text())
    prometheus = compose["services"]["prometheus"]
    assert _mount_target(prometheus, "deploy/prometheus/prometheus.yml") == \
        "/etc/prometheus/prometheus.yml"
    prom = yaml.load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    job = prom["scrape_configs"][0]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert job.get("scheme", "http") == "http"
    assert "worker" in prometheus["depends_on"]
    worker_env = compose["services"]["worker"]["environment"]
    if str(worker_env.get("TACT_PROTECT_METRICS", "false")).lower() in ("1", "true", "yes"):
        assert "authorization" in job, "/metrics needs the bearer token; Prometheus sends none"


def test_grafana_provisions_the_dashboards_folder_compose_mounts() -> None:
    compose = yaml.load((REPO / "docker-compose.yml").read_text())
    grafana = compose["services"]["grafana"]
    provisioning = REPO / "deploy/grafana/provisioning"
    assert _mount_target(grafana, "deploy/grafana/provisioning") == "/etc/grafana/provisioning"
    mounted = _mount_target(grafana, "deploy/grafana/dashboards")
    providers = yaml.load((provisioning / "dashboards/tact.yml").read_text())["providers"]
    assert [p["options"]["path"] for p in providers if p["type"] == "file"] == [mounted]
    dashboards = sorted((REPO / "deploy/grafana/dashboards").glob("*.json"))
    assert [p.name for p in dashboards] == ["tact.json"]


def test_grafana_datasource_points_at_the_compose_prometheus() -> None:
    compose = yaml.load((REPO / "docker-compose.yml").read_text())
    sources = yaml.load(
        (REPO / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    (ds,) = sources["datasources"]
    assert ds["type"] == "prometheus" and ds["uid"] and ds["access"] == "proxy"
    ports = [str(p).split(":")[-1] for p in compose["services"]["prometheus"]["ports"]]
    assert ds["url"] == f"http://prometheus:{ports[0]}"
    assert "prometheus" in compose["services"]["grafana"]["depends_on"]


REQUIRED = re.compile(r"^\$\{(\w+):\?[^}]+\}$")  # compose: stop with a message if unset/empty


def _interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR:?message}`` / ``${VAR:-default}``, for the forms this file uses."""
    def one(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2) or "", m.group(3) or ""
        if env.get(name):
            return env[name]
        if op == ":?":
            raise LookupError(f"{name}: {arg}")
        return arg

    return re.sub(r"\$\{(\w+)(:[?-])?([^}]*)\}", one, value)


def test_every_published_port_is_on_loopback() -> None:
    compose = yaml.load((REPO / "docker-compose.yml").read_text())
    published = {name: svc.get("ports", []) for name, svc in compose["services"].items()}
    assert published["worker"] and published["redis"] and published["grafana"]
    for name, ports in published.items():
        for mapping in ports:
            assert str(mapping).startswith("127.0.0.1:"), f"{name} publishes {mapping} to all"


def test_the_worker_needs_a_real_token() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    worker = yaml.load(text)["services"]["worker"]
    token = worker["environment"]["TACT_API_TOKEN"]
    match = REQUIRED.match(token)
    assert match and match.group(1) == "TACT_API_TOKEN", token  # no default, no placeholder
    with pytest.raises(LookupError, match="TACT_API_TOKEN"):
        _interpolate(token, {})
    with pytest.raises(LookupError, match="TACT_API_TOKEN"):
        _interpolate(token, {"TACT_API_TOKEN": ""})
    assert _interpolate(token, {"TACT_API_TOKEN": "abc"}) == "abc"
    assert "change-me" not in str(worker)


def test_redis_has_a_password_the_worker_uses() -> None:
    services = yaml.load((REPO / "docker-compose.yml").read_text())["services"]
    env = {"TACT_REDIS_PASSWORD": "0f3a9c"}
    command = [_interpolate(str(part), env) for part in services["redis"]["command"]]
    assert command[command.index("--requirepass") + 1] == "0f3a9c"
    assert _interpolate(services["redis"]["environment"]["REDISCLI_AUTH"], env) == "0f3a9c"
    assert "PONG" in str(services["redis"]["healthcheck"]["test"])  # an auth error is unhealthy
    url = services["worker"]["environment"]["TACT_REDIS_URL"]
    assert services["campaigns"]["environment"]["TACT_REDIS_URL"] == url  # the same Redis
    with pytest.raises(LookupError, match="TACT_REDIS_PASSWORD"):
        _interpolate(url, {})
    parsed = parse_url(_interpolate(url, env))
    assert parsed["password"] == "0f3a9c" and parsed["host"] == "redis"
    settings = TactSettings(_env_file=None, redis_url=_interpolate(url, env))  # type: ignore[call-arg]
    assert "0f3a9c" not in repr(settings)
