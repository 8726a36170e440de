"""docker-compose.yml and its Prometheus/Grafana wiring stay consistent with the code."""

from __future__ import annotations

from ruamel.yaml import YAML

from engine.config import TactSettings
from tests.conftest import REPO

yaml = YAML(typ="safe")


def test_compose_has_the_whole_stack() -> None:
    compose = yaml.load((REPO / "docker-compose.yml").read_text())
    assert {"kafka", "redis", "worker", "prometheus", "grafana"} <= set(compose["services"])
    for mount in compose["services"]["prometheus"]["volumes"] + compose["services"]["grafana"][
        "volumes"
    ]:
        host = mount.split(":")[0]
        assert (REPO / host).exists(), f"compose mounts {host}, which is missing"
    assert (REPO / "Dockerfile").exists()


def test_compose_worker_settings_are_real_settings() -> None:
    compose = yaml.load((REPO / "docker-compose.yml").read_text())
    known = {f"TACT_{name.upper()}" for name in TactSettings.model_fields}
    for svc in ("worker", "webhook"):
        for var in compose["services"][svc]["environment"]:
            assert var in known, f"{svc} sets {var}, which TactSettings does not read"


def test_prometheus_scrapes_the_worker_port() -> None:
    compose = yaml.load((REPO / "docker-compose.yml").read_text())
    port = compose["services"]["worker"]["environment"]["TACT_WEB_PORT"]
    prom = yaml.load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    targets = prom["scrape_configs"][0]["static_configs"][0]["targets"]
    assert targets == [f"worker:{port}"]
