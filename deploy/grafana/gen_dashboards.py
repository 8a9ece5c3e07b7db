#!/usr/bin/env python3
"""Generates deploy/grafana/dashboards/*.json. Edit here, then run:

    python3 deploy/grafana/gen_dashboards.py

deploy/dashboards_test.go checks the output (datasources, targets, and that every metric
an expression names is registered by the code).
"""
import json
import os

DS = {"type": "prometheus", "uid": "${datasource}"}
PROBES = 'route!~"/healthz|/readyz|/metrics"'


def panel(title, exprs, unit="short", kind="timeseries", legend=None, desc=""):
    targets = []
    for i, e in enumerate(exprs):
        expr, leg = e if isinstance(e, tuple) else (e, legend or "")
        targets.append({"datasource": DS, "expr": expr, "legendFormat": leg, "refId": chr(65 + i)})
    p = {
        "type": kind,
        "title": title,
        "description": desc,
        "datasource": DS,
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
    }
    if kind == "timeseries":
        p["options"] = {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}}
    return p


def row(title):
    return {"type": "row", "title": title, "collapsed": False, "panels": []}


def layout(items):
    """Places panels 12 wide, two a line; rows take a full line."""
    out, x, y, pid = [], 0, 0, 1
    for it in items:
        it = dict(it)
        it["id"] = pid
        pid += 1
        if it["type"] == "row":
            if x:
                y += 8
                x = 0
            it["gridPos"] = {"h": 1, "w": 24, "x": 0, "y": y}
            y += 1
        else:
            w = 6 if it["type"] == "stat" else 12
            if x + w > 24:
                x = 0
                y += 8
            it["gridPos"] = {"h": 8 if it["type"] != "stat" else 4, "w": w, "x": x, "y": y}
            x += w
            if x >= 24:
                x = 0
                y += 8
        out.append(it)
    return out


def dashboard(uid, title, tags, items, desc):
    return {
        "uid": uid,
        "title": title,
        "description": desc,
        "tags": ["talentforge", "auth-platform"] + tags,
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": [{
            "name": "datasource", "label": "Prometheus", "type": "datasource",
            "query": "prometheus", "current": {}, "hide": 0, "refresh": 1,
        }]},
        "annotations": {"list": []},
        "links": [{"title": "TalentForge", "type": "dashboards", "tags": ["talentforge"], "asDropdown": True}],
        "panels": layout(items),
    }


def red(svc):
    s = f'service="{svc}"'
    return [
        row("Requests (RED per route; probes and /metrics excluded)"),
        panel("Request rate by route", [(f'sum by (route, method) (rate(http_requests_total{{{s},{PROBES}}}[$__rate_interval]))', "{{method}} {{route}}")], "reqps"),
        panel("Errors by route and status (4xx, 5xx)", [(f'sum by (route, status) (rate(http_requests_total{{{s},{PROBES},status=~"4..|5.."}}[$__rate_interval]))', "{{status}} {{route}}")], "reqps"),
        panel("5xx ratio", [(f'sum(rate(http_requests_total{{{s},status=~"5.."}}[$__rate_interval])) / sum(rate(http_requests_total{{{s}}}[$__rate_interval]))', "5xx")], "percentunit"),
        panel("p99 latency by route", [(f'histogram_quantile(0.99, sum by (le, route) (rate(http_request_duration_seconds_bucket{{{s},{PROBES}}}[$__rate_interval])))', "{{route}}")], "s"),
        panel("p50 / p95 / p99 latency", [
            (f'histogram_quantile({q}, sum by (le) (rate(http_request_duration_seconds_bucket{{{s},{PROBES}}}[$__rate_interval])))', f"p{int(q*100)}")
            for q in (0.5, 0.95, 0.99)], "s"),
        panel("Requests slower than 500 ms (SLO: under 1%)", [(f'1 - sum(rate(http_request_duration_seconds_bucket{{{s},{PROBES},le="0.5"}}[$__rate_interval])) / sum(rate(http_request_duration_seconds_count{{{s},{PROBES}}}[$__rate_interval]))', "slow ratio")], "percentunit"),
        panel("In-flight requests", [(f'sum by (instance) (http_requests_in_flight{{{s}}})', "{{instance}}")]),
    ]


def runtime(job):
    j = f'job="{job}"'
    return [
        row("Process"),
        panel("Targets up", [(f'up{{{j}}}', "{{instance}}")], kind="stat"),
        panel("Goroutines", [(f'go_goroutines{{{j}}}', "{{instance}}")], kind="stat"),
        panel("Resident memory", [(f'process_resident_memory_bytes{{{j}}}', "{{instance}}")], "bytes"),
        panel("CPU", [(f'rate(process_cpu_seconds_total{{{j}}}[$__rate_interval])', "{{instance}}")], "percentunit"),
    ]


auth = dashboard("talentforge-auth", "Auth service", ["auth"], red("auth") + [
    row("Business"),
    panel("Logins by result", [('sum by (result) (rate(auth_logins_total[$__rate_interval]))', "{{result}}")], "reqps"),
    panel("Throttled requests by purpose", [('sum by (purpose) (rate(auth_throttled_requests_total[$__rate_interval]))', "{{purpose}}")], "reqps"),
    panel("Refreshes by result", [('sum by (result) (rate(auth_refresh_total[$__rate_interval]))', "{{result}}")], "reqps"),
    panel("Refresh-token reuse detected (sessions revoked)", [('sum(increase(auth_refresh_reuse_detected_total[$__rate_interval]))', "reuse")]),
    panel("Login success ratio", [('sum(rate(auth_logins_total{result="success"}[$__rate_interval])) / sum(rate(auth_logins_total[$__rate_interval]))', "success")], "percentunit"),
    row("Outbox (events to NATS)"),
    panel("Outbox pending", [('max(outbox_pending{job="auth"})', "pending")]),
    panel("Outbox published and failed", [
        ('sum(rate(outbox_published_total{job="auth"}[$__rate_interval]))', "published"),
        ('sum(rate(outbox_publish_failures_total{job="auth"}[$__rate_interval]))', "failed")], "ops"),
] + runtime("auth"), "RED per route, logins, throttling, refresh-token reuse and the outbox of the auth service.")

oauth = dashboard("talentforge-oauth", "OAuth service", ["oauth"], red("oauth") + [
    row("Business"),
    panel("Sign-ins by provider and result", [('sum by (provider, result) (rate(oauth_sign_ins_total[$__rate_interval]))', "{{provider}} {{result}}")], "reqps"),
    panel("Provider errors by provider and reason", [('sum by (provider, reason) (rate(oauth_provider_errors_total[$__rate_interval]))', "{{provider}} {{reason}}")], "reqps"),
    panel("Sign-in success ratio by provider", [('sum by (provider) (rate(oauth_sign_ins_total{result=~"success|linked"}[$__rate_interval])) / sum by (provider) (rate(oauth_sign_ins_total[$__rate_interval]))', "{{provider}}")], "percentunit"),
    panel("Provider circuit breakers (0 closed, 1 half-open, 2 open)", [('max by (provider) (oauth_provider_breaker_state)', "{{provider}}")]),
] + runtime("oauth"), "RED per route, sign-ins and provider errors of the oauth service.")

worker = dashboard("talentforge-token-worker", "Token worker", ["token-worker"], [
    row("Consumers (JetStream)"),
    panel("Consumer lag (pending)", [('max by (consumer) (token_worker_consumer_pending)', "{{consumer}}")]),
    panel("Ack pending", [('max by (consumer) (token_worker_consumer_ack_pending)', "{{consumer}}")]),
    panel("Events handled by consumer and result", [('sum by (consumer, result) (rate(token_worker_events_consumed_total[$__rate_interval]))', "{{consumer}} {{result}}")], "ops"),
    panel("Dead letters by consumer and type", [('sum by (consumer, type) (increase(token_worker_dead_letters_total[$__rate_interval]))', "{{consumer}} {{type}}")]),
    row("Emails"),
    panel("Emails sent by kind", [('sum by (kind) (rate(token_worker_emails_sent_total[$__rate_interval]))', "{{kind}}")], "ops"),
    panel("Email failures by kind and reason", [('sum by (kind, reason) (rate(token_worker_emails_failed_total[$__rate_interval]))', "{{kind}} {{reason}}")], "ops"),
    panel("SMTP circuit breaker (0 closed, 1 half-open, 2 open)", [('max(token_worker_smtp_breaker_state)', "state")], kind="stat"),
    row("Webhooks"),
    panel("Webhook deliveries by outcome", [
        ('sum by (outcome) (rate(token_worker_webhook_deliveries_total[$__rate_interval]))', "{{outcome}}"),
        ('max(token_worker_webhook_deliveries_pending)', "pending (right now)"),
        ('sum(increase(token_worker_webhook_endpoints_disabled_total[$__rate_interval]))', "endpoints disabled")], "short",
        desc="succeeded and failed are attempts, dead are deliveries given up (to AUTH_DEADLETTER); pending is a count, not a rate."),
    panel("Webhook call duration (p50, p99)", [
        ('histogram_quantile(0.5, sum by (le) (rate(token_worker_webhook_attempt_duration_seconds_bucket[$__rate_interval])))', "p50"),
        ('histogram_quantile(0.99, sum by (le) (rate(token_worker_webhook_attempt_duration_seconds_bucket[$__rate_interval])))', "p99")], "s"),
    row("Clean-up"),
    panel("Rows deleted by table", [('sum by (table) (increase(token_worker_cleanup_deleted_total[$__rate_interval]))', "{{table}}")]),
] + runtime("token-worker"), "Consumer lag, dead letters, emails, webhooks and clean-up of the token-worker.")

overview = dashboard("talentforge-overview", "Auth platform overview", ["overview"], [
    row("Health"),
    panel("Targets up", [('sum by (job) (up{job=~"auth|oauth|token-worker|traefik"})', "{{job}}")], kind="stat"),
    panel("Outbox pending", [('max(outbox_pending)', "pending")], kind="stat"),
    panel("Consumer lag", [('sum(token_worker_consumer_pending)', "pending")], kind="stat"),
    panel("Dead letters (1h)", [('sum(increase(token_worker_dead_letters_total[1h]))', "dead letters")], kind="stat"),
    row("Traffic by service"),
    panel("Request rate by service", [(f'sum by (service) (rate(http_requests_total{{{PROBES}}}[$__rate_interval]))', "{{service}}")], "reqps"),
    panel("5xx ratio by service", [('sum by (service) (rate(http_requests_total{status=~"5.."}[$__rate_interval])) / sum by (service) (rate(http_requests_total[$__rate_interval]))', "{{service}}")], "percentunit"),
    panel("p99 latency by service", [(f'histogram_quantile(0.99, sum by (le, service) (rate(http_request_duration_seconds_bucket{{{PROBES}}}[$__rate_interval])))', "{{service}}")], "s"),
    panel("Latency SLO: slow ratio (1h) by service", [('service:http_request_slow:ratio_rate1h', "{{service}}")], "percentunit"),
    row("Business"),
    panel("Logins by result", [('sum by (result) (rate(auth_logins_total[$__rate_interval]))', "{{result}}")], "reqps"),
    panel("OAuth sign-ins by provider", [('sum by (provider, result) (rate(oauth_sign_ins_total[$__rate_interval]))', "{{provider}} {{result}}")], "reqps"),
    panel("Throttled and reused", [
        ('sum(rate(auth_throttled_requests_total[$__rate_interval]))', "throttled"),
        ('sum(rate(auth_refresh_reuse_detected_total[$__rate_interval]))', "refresh reuse")], "reqps"),
    panel("Emails sent and failed", [
        ('sum(rate(token_worker_emails_sent_total[$__rate_interval]))', "sent"),
        ('sum(rate(token_worker_emails_failed_total[$__rate_interval]))', "failed")], "ops"),
    row("Gateway (Traefik)"),
    panel("Gateway requests by code", [('sum by (code) (rate(traefik_entrypoint_requests_total[$__rate_interval]))', "{{code}}")], "reqps"),
    panel("Gateway requests by service", [('sum by (service) (rate(traefik_service_requests_total[$__rate_interval]))', "{{service}}")], "reqps"),
], "One page for the whole platform: health, traffic, SLO, business and the gateway.")

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dashboards")
for name, d in (("auth", auth), ("oauth", oauth), ("token-worker", worker), ("overview", overview)):
    with open(os.path.join(here, name + ".json"), "w") as f:
        json.dump(d, f, indent=2)
        f.write("\n")
