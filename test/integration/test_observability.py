"""Observability methods (docs/API.md "Metrics", "Logging.Change",
"debug.Stacks", "containerManager.ProcfsDump", "Profile.*") against a
running container, their argument errors, and the CLI verbs that print them."""
import json
import os
import re

import pytest

import helpers


def call_err(sb, method, arg=None):
    """The error string of a call that must fail (the connection stays usable)."""
    with sb.raw() as r:
        err, res = r.recv_reply(r.request(method, arg))
        assert err is not None, f"{method}({arg!r}) answered {res!r}"
        # The same connection still serves.
        assert r.call("containerManager.ContainerRuntimeState", sb.id) == 2
        return err


def samples(export, name):
    return [d for d in export["Data"] if d["name"] == name]


# ---- Metrics -----------------------------------------------------------------

def test_metrics_registration_and_export(running_sandbox):
    sb = running_sandbox
    status, out = sb.run_exec(["true"])
    assert status == 0
    reg = sb.call("Metrics.GetRegisteredMetrics")
    names = {m["prometheus_name"]: m for m in reg["Metrics"]}
    for n in ("cvisor_rpc_calls_total", "cvisor_rpc_errors_total", "cvisor_rpc_latency_seconds",
              "cvisor_containers", "cvisor_tasks", "cvisor_execs_started_total",
              "cvisor_execs_failed_total", "cvisor_signals_sent_total",
              "cvisor_loop_iterations_total", "cvisor_loop_callback_seconds_total"):
        assert n in names, n
    lat = names["cvisor_rpc_latency_seconds"]
    assert lat["type"] == "distribution" and lat["prometheus_type"] == "histogram"
    assert lat["fields"][0]["field_name"] == "method"
    assert "containerManager.ExecuteAsync" in lat["fields"][0]["allowed_values"]

    exp = sb.call("Metrics.Export", {"only_metrics": ""})
    assert exp["ExportedAt"] > 0
    calls = {d["labels"]["method"]: d["value"] for d in samples(exp, "cvisor_rpc_calls_total")}
    assert calls["containerManager.ExecuteAsync"] >= 1
    assert calls["containerManager.WaitPID"] >= 1
    assert calls["containerManager.StartRoot"] == 1
    (started,) = samples(exp, "cvisor_execs_started_total")
    assert started["value"] >= 1
    conts = {d["labels"]["state"]: d["value"] for d in samples(exp, "cvisor_containers")}
    assert conts["running"] == 1
    tasks = {d["labels"]["state"]: d["value"] for d in samples(exp, "cvisor_tasks")}
    assert tasks["running"] >= 1
    (it,) = samples(exp, "cvisor_loop_iterations_total")
    assert it["value"] > 0
    (cb,) = samples(exp, "cvisor_loop_callback_seconds_total")
    assert cb["value"] > 0
    hists = samples(exp, "cvisor_rpc_latency_seconds")
    ex = [h for h in hists if h["labels"]["method"] == "containerManager.ExecuteAsync"][0]
    assert ex["histogram"]["count"] >= 1 and ex["histogram"]["sum"] > 0
    assert ex["histogram"]["buckets"][-1][0] == float("inf")
    assert ex["histogram"]["buckets"][-1][1] == ex["histogram"]["count"]

    # The filter is a POSIX ERE on the Prometheus name.
    only = sb.call("Metrics.Export", {"only_metrics": "^cvisor_execs_"})
    assert {d["name"] for d in only["Data"]} == {"cvisor_execs_started_total",
                                                 "cvisor_execs_failed_total"}
    # nil argument: everything.
    assert len(sb.call("Metrics.Export")["Data"]) >= len(exp["Data"])


def test_metrics_count_errors_and_signals(running_sandbox):
    sb = running_sandbox
    before = sb.call("Metrics.Export", {"only_metrics": "errors|signals"})
    err = call_err(sb, "containerManager.Signal", {"CID": "nope", "Signo": 0})
    assert "not found" in err
    sb.call("containerManager.Signal", {"CID": sb.id, "Signo": 0, "PID": 0, "Mode": 0})
    after = sb.call("Metrics.Export", {"only_metrics": "errors|signals"})

    def val(e, name, method=None):
        for d in samples(e, name):
            if method is None or d["labels"].get("method") == method:
                return d["value"]
        raise AssertionError(name)
    assert val(after, "cvisor_rpc_errors_total", "containerManager.Signal") == \
        val(before, "cvisor_rpc_errors_total", "containerManager.Signal") + 1
    assert val(after, "cvisor_signals_sent_total") == val(before, "cvisor_signals_sent_total") + 1


def test_metrics_export_argument_errors(running_sandbox):
    sb = running_sandbox
    err = call_err(sb, "Metrics.Export", {"only_metrics": "("})
    assert err.startswith("MetricsExportOpts.only_metrics: invalid regular expression (:"), err
    err = call_err(sb, "Metrics.Export", {"only_metrics": 5})
    assert err.startswith("MetricsExportOpts.only_metrics: "), err
    err = call_err(sb, "Metrics.Export", "x")
    assert err.startswith("MetricsExportOpts: expected map"), err


def test_export_metrics_cli_prints_prometheus_text(running_sandbox, cli):
    sb = running_sandbox
    p = cli.run("export-metrics", sb.id, check=True)
    text = p.stdout
    assert "# HELP cvisor_rpc_calls_total " in text
    assert "# TYPE cvisor_rpc_calls_total counter" in text
    assert "# TYPE cvisor_rpc_latency_seconds histogram" in text
    assert re.search(r'^cvisor_rpc_latency_seconds_bucket\{method="[^"]+",le="\+Inf"\} \d+$',
                     text, re.M)
    assert re.search(r'^cvisor_containers\{state="running"\} 1$', text, re.M)
    # Every line is a comment or a well-formed sample (what a scraper parses).
    sample = re.compile(r'^cvisor_[a-z_]+(\{[a-z_]+="(?:[^"\\]|\\.)*"(,[a-z_]+="(?:[^"\\]|\\.)*")*\})? '
                        r'(\+Inf|-?[0-9.e+-]+)$')
    for line in text.splitlines():
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or sample.match(line), line
    p = cli.run("export-metrics", "--only-metrics", "^cvisor_tasks$", sb.id, check=True)
    assert "cvisor_tasks{" in p.stdout and "cvisor_rpc" not in p.stdout
    p = cli.run("export-metrics", "--only-metrics", "[", sb.id)
    assert p.returncode != 0 and "only_metrics: invalid regular expression" in p.stderr
