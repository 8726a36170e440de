"""The Grafana dashboard is well formed and every metric its queries use is one the worker
exposes (checked here against ``engine.observability.metrics.Metrics``; the live check
against a running worker's ``/metrics`` is ``tests/integration/test_grafana_metrics_live.py``).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from ruamel.yaml import YAML

from engine.models.decision import Decision, decision_id
from engine.observability.metrics import Metrics
from engine.outcomes.stats import uplift
from tests.conftest import REPO

DASHBOARD = REPO / "deploy/grafana/dashboards/tact.json"
DATASOURCES = REPO / "deploy/grafana/provisioning/datasources/prometheus.yml"
METRIC = re.compile(r"\btact_[a-z_]+")
LEGEND_LABEL = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")
SCRAPE_LABELS = {"instance", "job"}  # added by Prometheus to every scraped series


# -- helpers shared with the integration test ---------------------------------------------
def load_dashboard() -> dict[str, Any]:
    body: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return body


def provisioned_datasource() -> dict[str, Any]:
    """The Prometheus datasource provisioned for Grafana (there is exactly one)."""
    sources = YAML(typ="safe").load(DATASOURCES.read_text())["datasources"]
    proms = [s for s in sources if s["type"] == "prometheus"]
    assert len(proms) == 1, proms
    ds: dict[str, Any] = proms[0]
    return ds


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, including those inside (collapsed) rows."""
    for p in panels:
        yield p
        yield from all_panels(p.get("panels", []))


def targets(dashboard: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(panel, target) for every query of the dashboard."""
    for p in all_panels(dashboard["panels"]):
        for t in p.get("targets", []):
            yield p, t


def queries(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL text of the dashboard: panel targets and template variable queries."""
    out = [t["expr"] for _, t in targets(dashboard)]
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            q = var["query"]
            out.append(q["query"] if isinstance(q, dict) else q)
    return out


def metric_names(exprs: list[str]) -> set[str]:
    return {name for expr in exprs for name in METRIC.findall(expr)}


def exposed(text: str) -> dict[str, set[str]]:
    """Sample name -> label names, from Prometheus exposition text."""
    out: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, set()).update(sample.labels)
    return out


SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",),
            "info": ("_info",)}


def declared(text: str) -> set[str]:
    """Every sample name the exposition's metric families declare (by their TYPE), whether or
    not a sample was observed yet: a labelled counter with no children is declared only."""
    return {family.name + suffix for family in text_string_to_metric_families(text)
            for suffix in SUFFIXES.get(family.type, ("",))}


def check_against(exposition: dict[str, set[str]], dashboard: dict[str, Any]) -> list[str]:
    """Problems: metric names the dashboard queries that are not exposed, and legend labels
    that none of a query's metrics carries. Empty when all is well."""
    problems = [f"the dashboard queries {n}, which is not exposed"
                for n in sorted(metric_names(queries(dashboard))) if n not in exposition]
    for panel, t in targets(dashboard):
        labels = set(SCRAPE_LABELS)
        for name in METRIC.findall(t["expr"]):
            labels |= exposition.get(name, set())
        for label in LEGEND_LABEL.findall(t.get("legendFormat", "")):
            if label not in labels:
                problems.append(f"panel {panel['title']!r}: legend label {label!r} is on none "
                                f"of {sorted(set(METRIC.findall(t['expr'])))}")
    return problems


def observe_everything(m: Metrics) -> None:
    """One sample of every metric, so every series (and every label name) exists."""
    m.set_pack("example", "v1abc", ["app_open"])
    m.count_events(["app_open", "unknown_type"])
    m.count_decisions([
        Decision(id=decision_id("e", "r", "push"), event_id="e", customer="c", rule="r",
                 message="m", template="m", category="promotion", channel="push",
                 outcome="suppressed", reasons=["cooldown"], decided_at=datetime.now(UTC)),
    ])
    m.duplicates.inc()
    m.dead_letters.labels("schema").inc()
    m.batch_size.observe(10)
    m.processing.observe(0.004)
    m.end_to_end.observe(0.02)
    m.redis.labels("load").observe(0.001)
    m.set_lag({0: 3, 1: 0})
    m.pending_followups.set(2)
    m.reloads.labels("ok").inc()
    m.rule_faults.labels("r").inc()
    m.count_kpis({(0, "nps", "promoter"): 1.0, (0, "nps", "sum"): 9.0})
    m.outcomes.count(Counter({("sent", "r", "m", "push"): 1}),
                     {(20000, "r", "m", "holdout", "touched"): 1.0,
                      (20000, "r", "m", "sent", "value"): 9.5})


# -- tests --------------------------------------------------------------------------------
def test_dashboard_is_well_formed() -> None:
    d = load_dashboard()
    assert d["uid"] and d["title"]
    assert d["schemaVersion"] >= 39
    panels = list(all_panels(d["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {sorted(ids)}"
    assert all(isinstance(i, int) for i in ids)
    queried = [p for p in panels if p["type"] != "row"]
    assert len(queried) >= 19
    for p in queried:
        assert p.get("targets"), f"panel {p['title']!r} has no query"
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), f"panel {p['title']!r}: duplicate refIds {refs}"
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24 and g["w"] > 0 and g["h"] > 0, p["title"]


def test_every_query_uses_the_provisioned_datasource() -> None:
    ds = provisioned_datasource()
    want = {"type": "prometheus", "uid": ds["uid"]}
    d = load_dashboard()
    for panel, t in targets(d):
        assert t.get("expr", "").strip(), f"panel {panel['title']!r}: a target has no expr"
        assert t["datasource"] == want, f"panel {panel['title']!r}: {t['datasource']}"
        assert panel["datasource"] == want, f"panel {panel['title']!r}: {panel['datasource']}"
    for var in d["templating"]["list"]:
        if var["type"] == "query":
            assert var["datasource"] == want, var["name"]


def test_dashboard_covers_the_operational_questions() -> None:
    exprs = queries(load_dashboard())
    joined = "\n".join(exprs)
    for needle in [
        "rate(tact_events_in_total",
        "sum by (outcome) (rate(tact_decisions_total",
        "topk(10, sum by (rule) (increase(tact_decisions_total",
        "sum by (reason) (rate(tact_suppressions_total",
        "sum by (reason) (rate(tact_dead_letters_total",
        "tact_duplicate_events_total",
        "histogram_quantile(0.5, sum by (le) (rate(tact_processing_seconds_bucket",
        "histogram_quantile(0.99, sum by (le) (rate(tact_processing_seconds_bucket",
        "histogram_quantile(0.5, sum by (le) (rate(tact_end_to_end_seconds_bucket",
        "histogram_quantile(0.99, sum by (le) (rate(tact_end_to_end_seconds_bucket",
        "tact_batch_size_bucket",
        "sum by (le, op) (rate(tact_redis_call_seconds_bucket",
        "sum by (partition) (tact_consumer_lag",
        "tact_pending_followups",
        "tact_rules_info",
        "tact_rule_reloads_total",
        "tact_rule_faults_total",
        'sum by (rule, message, group) (increase(tact_outcome_total{instance=~"$instance", '
        'stage="converted"}[$__range])) / sum by (rule, message, group) (increase('
        'tact_outcome_total{instance=~"$instance", stage="touched"}[$__range]))',
        "tact_goal_value_total",
    ]:
        assert needle in joined, f"no query has {needle!r}"
    for expr in exprs:  # histograms are only ever read through their buckets, sum and count
        assert expr.count("(") == expr.count(")"), expr
        for name in METRIC.findall(expr):
            if name.endswith(("_seconds", "_batch_size")):
                raise AssertionError(f"{name} is a histogram's base name: {expr}")


def test_dashboard_shows_the_experience_kpis() -> None:
    """NPS, CSAT and CES computable from the KPI counters, over the dashboard's range."""
    by_title = {p["title"]: p["targets"][0]["expr"] for p in all_panels(load_dashboard()["panels"])
                if p.get("targets")}
    assert 'band="promoter"' in by_title["NPS"] and 'band="detractor"' in by_title["NPS"]
    assert 'kpi="csat",band="satisfied"' in by_title["CSAT"]
    assert "tact_kpi_score_sum_total" in by_title["CES"]
    assert "sum by (kpi, band) (increase(tact_kpi_responses_total" in by_title[
        "KPI answers by band"]


def test_every_queried_metric_is_exposed_by_the_worker_metrics() -> None:
    m = Metrics()
    observe_everything(m)
    exposition = exposed(m.render().decode())
    names = metric_names(queries(load_dashboard()))
    assert len(names) >= 16, names
    assert check_against(exposition, load_dashboard()) == []


def test_every_queried_metric_is_declared_before_any_traffic() -> None:
    text = Metrics().render().decode()
    missing = metric_names(queries(load_dashboard())) - declared(text)
    assert not missing, f"queried but not declared by Metrics: {sorted(missing)}"


def test_the_check_catches_a_misspelt_metric() -> None:
    m = Metrics()
    observe_everything(m)
    exposition = exposed(m.render().decode())
    d = load_dashboard()
    d["panels"].append({"id": 999, "type": "timeseries", "title": "bad", "targets": [
        {"expr": "rate(tact_events_total[5m])", "legendFormat": "{{nope}}"},
        {"expr": "tact_processing_seconds", "legendFormat": "{{type}}"},
    ]})
    problems = check_against(exposition, d)
    assert any("tact_events_total" in p for p in problems)
    assert any("tact_processing_seconds," in p for p in problems)
    assert any("'nope'" in p for p in problems)
    assert any("'type'" in p for p in problems)


SERIES = re.compile(r'sum by \(rule, message\) \(increase\(tact_outcome_total\{'
                    r'instance=~"\$instance", group="(treated|holdout)", '
                    r'stage="(converted|touched)"\}\[\$__range\]\)\)')


def _evaluate(expr: str, counts: dict[tuple[str, str], float]) -> float:
    """A panel's PromQL with each per-(rule, message) series replaced by a number: the
    arithmetic that is left is Python's too."""
    arithmetic = SERIES.sub(lambda m: repr(counts[(m[1], m[2])]), expr)
    # numbers, operators and sqrt only: nothing else reaches eval
    assert re.fullmatch(r"(?:[0-9.e+\-*/() ]|sqrt)+", arithmetic), arithmetic
    value: float = eval(arithmetic, {"__builtins__": {}, "sqrt": math.sqrt})
    return value


def test_the_uplift_panel_computes_what_tact_report_computes() -> None:
    (panel,) = [p for p in all_panels(load_dashboard()["panels"])
                if p["title"].startswith("Uplift")]
    exprs = {t["refId"]: t["expr"] for t in panel["targets"]}
    for c1, n1, c0, n0 in ((30, 100, 12, 90), (5, 400, 9, 380), (1, 3, 0, 2)):
        counts = {("treated", "converted"): float(c1), ("treated", "touched"): float(n1),
                  ("holdout", "converted"): float(c0), ("holdout", "touched"): float(n0)}
        want = uplift(c1, n1, c0, n0)
        assert want.absolute is not None and want.low is not None and want.high is not None
        assert _evaluate(exprs["A"], counts) == pytest.approx(want.absolute, abs=1e-12)
        assert _evaluate(exprs["B"], counts) == pytest.approx(want.low, abs=1e-7)
        assert _evaluate(exprs["C"], counts) == pytest.approx(want.high, abs=1e-7)
