"""The model updater (docs/models.md): `refit models` and the daemon's model
job pull the configured Ollama models and report each one updated,
up-to-date or failed, in the output, the history, the metrics and the
notifications.

Ollama itself cannot be installed on the test machine (its binary and its
models come from the internet), so these tests run a SMALL LOCAL SERVER that
follows Ollama's documented API (ollamaserver.py: GET /api/tags, POST
/api/pull answering NDJSON progress, chunked or close-delimited, on
127.0.0.1), with knobs to make a pull change a digest, fail with an error
line or an HTTP error, stall, or send garbage or an oversized line.  What
the tests check is what refit saw and recorded against the server's state:
the digests it reports are the server's, the pulls it sent are in the
server's log.
"""

import json
import os
import time

import pytest

from daemontools import Daemon
from harness import free_port, wait_for
from ollamaserver import OllamaServer, new_digest, norm
from swaptools import sanitizer_report
from test_api import Metrics
from test_notify import Receiver



@pytest.fixture
def ollama():
    made = []

    def make(**kw):
        s = OllamaServer(**kw)
        made.append(s)
        return s
    yield make
    for s in made:
        s.stop()


def models_config(refit, server_url, names, extra=""):
    lines = ["# refit e2e models", "state_dir: %s" % refit.state_dir, "models:",
             "  endpoint: %s" % server_url]
    if names is not None:
        lines.append("  names: [%s]" % ", ".join(json.dumps(n) for n in names))
    return "\n".join(lines) + "\n" + extra


def run_models(refit, config, env=None, timeout=60, json_out=True):
    env = dict(env or {})
    env.setdefault("OLLAMA_MODELS", None)
    env.setdefault("UPDATE_INTERVAL", None)
    r = refit.run(*(["models", "--json"] if json_out else ["models"]), config=config, env=env,
                  timeout=timeout)
    assert not sanitizer_report(r.stderr), r.stderr
    return r


def by_name(r):
    try:
        doc = json.loads(r.stdout)
    except ValueError:
        raise AssertionError("not JSON: rc=%s\n%s\n%s" % (r.rc, r.stdout, r.stderr))
    assert set(doc) == {"endpoint", "models"}, doc
    return {m["name"]: m for m in doc["models"]}


def history(refit, name=None, env=None):
    args = ["history", "--json"] + ([name] if name else [])
    r = refit.run(*args, config=models_config(refit, "http://127.0.0.1:1", None), env={
        "OLLAMA_MODELS": None, "UPDATE_INTERVAL": None})
    assert r.rc == 0, r.stderr
    return json.loads(r.stdout)["history"]


def sha(hexd):
    return "sha256:" + hexd


def test_updated_up_to_date_failed_and_unknown(refit, ollama):
    """One pass over four models on a chunked stream: the one whose library
    digest moved is updated (old and new digest as /api/tags listed them),
    the unchanged one is up-to-date, the failing pull is failed with the
    server's error, the unknown name is failed with "file does not exist";
    exit 1.  History: the updated and failed ones, kind model."""
    a1, a2, b1 = new_digest(), new_digest(), new_digest()
    srv = ollama(installed={"llama3.2:3b": a1, "mistral": b1, "broken:7b": b1},
                 library={"llama3.2:3b": a2, "mistral": b1, "broken:7b": a2}, framing="chunked")
    srv.faults["broken:7b"] = ("error", "max retries exceeded: EOF")
    names = ["llama3.2:3b", "mistral", "broken:7b", "no-such-model"]
    r = run_models(refit, models_config(refit, srv.url, names))
    assert r.rc == 1, r
    got = by_name(r)
    assert list(got) == names
    up = got["llama3.2:3b"]
    assert (up["status"], up["old_digest"], up["new_digest"]) == ("updated", sha(a1), sha(a2))
    assert "error" not in up
    same = got["mistral"]
    assert (same["status"], same["old_digest"], same["new_digest"]) == ("up-to-date", sha(b1), sha(b1))
    bad = got["broken:7b"]
    assert bad["status"] == "failed" and bad["old_digest"] == sha(b1) and bad["new_digest"] is None
    assert "max retries exceeded: EOF" in bad["error"]
    unk = got["no-such-model"]
    assert unk["status"] == "failed" and unk["old_digest"] is None
    assert "file does not exist" in unk["error"]
    # The server's side: one streamed pull request per model, as Ollama documents it.
    assert srv.pulls() == [{"model": n, "stream": True} for n in names]
    assert srv.digest("llama3.2:3b") == a2 and srv.digest("broken:7b") == b1
    assert srv.tags_requests() >= len(names) + 1

    hist = history(refit)
    assert [(h["kind"], h["model"], h["outcome"]) for h in hist] == [
        ("model", "llama3.2:3b", "updated"), ("model", "broken:7b", "failed"),
        ("model", "no-such-model", "failed")]
    assert hist[0]["old_digest"] == sha(a1) and hist[0]["new_digest"] == sha(a2)
    assert hist[0]["endpoint"] == srv.url and "container" not in hist[0]
    assert "max retries exceeded" in hist[1]["error"]
    assert [h["model"] for h in history(refit, "llama3.2:3b")] == ["llama3.2:3b"]
    # The table names the model, the digests and the outcome.
    r = refit.run("history", config=models_config(refit, srv.url, None),
                  env={"OLLAMA_MODELS": None, "UPDATE_INTERVAL": None})
    assert r.rc == 0, r.stderr
    row = [ln for ln in r.stdout.splitlines() if "llama3.2:3b" in ln]
    assert len(row) == 1 and "model" in row[0] and "updated" in row[0], r.stdout
    assert a1[:12] in row[0] and a2[:12] in row[0], r.stdout

    # A second pass: everything installed is now up to date; only the unknown one fails.
    r = run_models(refit, models_config(refit, srv.url, ["llama3.2:3b", "mistral"]))
    assert r.rc == 0, r
    assert {n: m["status"] for n, m in by_name(r).items()} == {
        "llama3.2:3b": "up-to-date", "mistral": "up-to-date"}
    assert len(history(refit)) == 3     # up-to-date pulls are not history


def test_close_delimited_stream_and_new_model_table(refit, ollama):
    """A close-delimited answer (no length, the connection ends) is read the
    same; a model not installed before is updated from nothing; the table
    output and exit 0."""
    d = new_digest()
    srv = ollama(installed={}, library={"codellama": d}, framing="close")
    r = run_models(refit, models_config(refit, srv.url, ["codellama"]), json_out=False)
    assert r.rc == 0, r
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["MODEL", "STATUS", "OLD", "NEW"]
    assert lines[1].split() == ["codellama", "updated", "-", d[:12]], r.stdout
    assert srv.digest("codellama") == d
    h = history(refit, "codellama")
    assert len(h) == 1 and h[0]["old_digest"] is None and h[0]["new_digest"] == sha(d)


def test_endpoint_unreachable_exit_3(refit):
    """Nothing listens at the endpoint: every model failed, exit 3, nothing
    pulled; the failures are in the history."""
    port = free_port()
    r = run_models(refit, models_config(refit, "http://127.0.0.1:%d" % port, ["mistral", "phi3"]))
    assert r.rc == 3, r
    got = by_name(r)
    assert [m["status"] for m in got.values()] == ["failed", "failed"]
    assert all("unreachable" in m["error"] for m in got.values()), got
    assert [h["outcome"] for h in history(refit)] == ["failed", "failed"]


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_garbage_oversized_http_error_and_no_success(refit, ollama, framing):
    """A stream with a non-JSON line, one with a 100 KiB line, an HTTP 500
    with an error body, and a stream that ends without success: each model
    failed with its reason, its digest as it was, the next model still
    pulled; refit exits 1 and does not crash."""
    d_old, d_new = new_digest(), new_digest()
    models = ["junk", "huge", "fivehundred", "truncated", "fine"]
    srv = ollama(installed={n: d_old for n in models}, library={n: d_new for n in models},
                 framing=framing)
    srv.faults[norm("junk")] = ("garbage",)
    srv.faults[norm("huge")] = ("oversized", 100 * 1024)
    srv.faults[norm("fivehundred")] = ("http", 500, "llama runner process has terminated")
    srv.faults[norm("truncated")] = ("nosuccess",)
    r = run_models(refit, models_config(refit, srv.url, models))
    assert r.rc == 1, r
    got = by_name(r)
    assert "not a JSON object" in got["junk"]["error"]
    assert "longer than 64 KiB" in got["huge"]["error"]
    assert "HTTP status 500" in got["fivehundred"]["error"]
    assert "llama runner process has terminated" in got["fivehundred"]["error"]
    assert "ended without success" in got["truncated"]["error"]
    for n in models[:4]:
        assert got[n]["status"] == "failed" and got[n]["old_digest"] == sha(d_old), got[n]
    assert got["fine"]["status"] == "updated" and got["fine"]["new_digest"] == sha(d_new)


def test_stalled_stream_times_out(refit, ollama):
    """A pull that stops sending (models.timeout: 2) is abandoned after about
    2 s of silence and reported failed; the next model is still pulled."""
    d1, d2 = new_digest(), new_digest()
    srv = ollama(installed={"slow": d1, "quick": d1}, library={"slow": d2, "quick": d2})
    srv.faults[norm("slow")] = ("stall", 60)
    t0 = time.monotonic()
    r = run_models(refit, models_config(refit, srv.url, ["slow", "quick"], "  timeout: 2\n"))
    took = time.monotonic() - t0
    assert r.rc == 1, r
    got = by_name(r)
    assert got["slow"]["status"] == "failed" and "timed out" in got["slow"]["error"], got
    assert got["quick"]["status"] == "updated"
    assert 1.5 < got["slow"]["seconds"] < 10, got
    assert took < 20, took


def test_env_mapping_and_validation(refit, ollama):
    """OLLAMA_MODELS (comma-separated, as the seed's updater read it) and
    UPDATE_INTERVAL map onto models.names / models.interval; REFIT_MODELS_*
    win over them; a bad name or interval is a configuration error (exit 2)
    naming the variable, and nothing is pulled."""
    d = new_digest()
    srv = ollama(installed={}, library={"llama3.2:3b": d, "mistral": d, "phi3": d})
    base = "state_dir: %s\n" % refit.state_dir
    r = run_models(refit, base, env={"OLLAMA_MODELS": "llama3.2:3b,mistral",
                                     "UPDATE_INTERVAL": "3600",
                                     "REFIT_MODELS_ENDPOINT": srv.url})
    assert r.rc == 0, r
    assert list(by_name(r)) == ["llama3.2:3b", "mistral"]
    assert by_name(r)["mistral"]["new_digest"] == sha(d)
    r = run_models(refit, base, env={"OLLAMA_MODELS": "llama3.2:3b,mistral",
                                     "REFIT_MODELS_NAMES": "phi3",
                                     "REFIT_MODELS_ENDPOINT": srv.url})
    assert r.rc == 0 and list(by_name(r)) == ["phi3"], r
    n = len(srv.pulls())
    for env, word in [({"OLLAMA_MODELS": "mistral,bad;name"}, "OLLAMA_MODELS: item 2"),
                      ({"UPDATE_INTERVAL": "hourly"}, "UPDATE_INTERVAL"),
                      ({"UPDATE_INTERVAL": "5"}, "UPDATE_INTERVAL"),
                      ({"REFIT_MODELS_ENDPOINT": "ftp://x"}, "REFIT_MODELS_ENDPOINT"),
                      ({"REFIT_MODELS_TIMEOUT": "0"}, "REFIT_MODELS_TIMEOUT")]:
        env.setdefault("REFIT_MODELS_ENDPOINT", srv.url)
        env.setdefault("OLLAMA_MODELS", "mistral")
        r = run_models(refit, base, env=env)
        assert r.rc == 2 and word in r.stderr, (env, r)
    r = run_models(refit, models_config(refit, srv.url, ["ok", "has space"]))
    assert r.rc == 2 and "models.names: item 2: expected a model name" in r.stderr, r
    assert len(srv.pulls()) == n
    # No models: nothing to do is success.
    r = run_models(refit, base + "models:\n  endpoint: %s\n" % srv.url)
    assert r.rc == 0 and by_name(r) == {} and "no models configured" in r.stderr, r


def test_models_help(refit):
    r = refit.run("models", "--help", globals=False)
    assert r.rc == 0 and "refit models [--json]" in r.stdout and "Ollama" in r.stdout, r
    r = refit.run("--help", globals=False)
    assert "refit models [--json]" in r.stdout


def test_daemon_model_pass_at_start(daemons, ollama, tmp_path):
    """The daemon runs a model pass at start (after recovery), beside the
    container passes: /metrics counts the models, GET /api/v1/history lists
    the updated one, a notification names it with both digests, and the
    log says when the next pass is due (UPDATE_INTERVAL).  Paused (across a
    restart), the pass at start is skipped and nothing is pulled."""
    a1, a2, b1 = new_digest(), new_digest(), new_digest()
    srv = ollama(installed={"llama3.2:3b": a1, "mistral": b1},
                 library={"llama3.2:3b": a2, "mistral": b1})
    rx = Receiver()
    try:
        extra = ("notifications:\n  - generic+http://127.0.0.1:%d/hook\n"
                 "models:\n  endpoint: %s\n  timeout: 5\n" % (rx.port, srv.url))
        d = daemons(config_extra=extra, env={"OLLAMA_MODELS": "llama3.2:3b,mistral",
                                             "UPDATE_INTERVAL": "90"})
        d.start()
        d.wait_log("model pass: 2 models, 1 updated, 0 failed; next in 90 s", timeout=30)
        m = Metrics(d.metrics_text())
        assert m.value("refit_models_checked_total") == 2
        assert m.value("refit_models_updated_total") == 1
        assert m.value("refit_models_failed_total") == 0
        assert m.value("refit_model_passes_total") == 1
        assert m.type_of("refit_models_updated_total") == "counter"
        hist = d.get_json("/api/v1/history")["history"]
        assert [(h["kind"], h["model"], h["outcome"], h["old_digest"], h["new_digest"])
                for h in hist] == [("model", "llama3.2:3b", "updated", sha(a1), sha(a2))]
        wait_for(lambda: rx.got("/hook"), 20, what="the model notification")
        body = json.loads(rx.got("/hook")[0]["body"])
        assert body["kind"] == "models", body
        assert body["models"] == [{"name": "llama3.2:3b", "old_digest": sha(a1),
                                   "new_digest": sha(a2), "outcome": "updated"}], body
        assert "1 updated" in body["summary"]
        assert srv.pulls() == [{"model": "llama3.2:3b", "stream": True},
                               {"model": "mistral", "stream": True}]
        # Pause, restart: the model pass at start is skipped.
        assert d.post_json("/api/v1/pause").status == 200
        d.stop()
        srv.library["llama3.2:3b"] = new_digest()
        d.start()
        d.wait_log("model pass skipped: updates are paused", timeout=30)
        m = Metrics(d.metrics_text())
        assert m.value("refit_model_passes_skipped_total") == 1
        assert m.value("refit_models_checked_total") == 0
        assert len(srv.pulls()) == 2
        d.stop()
    finally:
        rx.stop()


def test_daemon_stalled_pull_blocks_nothing_and_sigterm_ends_it(daemons, ollama, run_id):
    """While a model pull stalls (long models.timeout), the container passes
    go on every poll_interval (the model job is a thread of its own).
    SIGTERM then abandons the transfer and the daemon exits 0 promptly; the
    cut-short pull is neither history nor a notification (it says nothing
    about the model)."""
    d1 = new_digest()
    srv = ollama(installed={"slow": d1}, library={"slow": new_digest()})
    srv.faults[norm("slow")] = ("stall", 120)
    rx = Receiver()
    try:
        d = daemons(scope="e2e-models-%s" % run_id, schedule=None,
                    config_extra="poll_interval: 1\n"
                    "notifications:\n  - generic+http://127.0.0.1:%d/hook\n"
                    "models:\n  endpoint: %s\n  names: [slow]\n  timeout: 600\n" % (rx.port, srv.url),
                    env={"OLLAMA_MODELS": None, "UPDATE_INTERVAL": None})
        d.start()
        wait_for(lambda: srv.pulls(), 30, what="the pull")
        passes = Metrics(d.metrics_text()).value("refit_passes_total")
        wait_for(lambda: Metrics(d.metrics_text()).value("refit_passes_total") >= passes + 2, 20,
                 interval=0.3, what="container passes during the stalled pull")
        m = Metrics(d.metrics_text())
        assert m.value("refit_model_passes_total") == 0     # still pulling
        assert srv.digest("slow") == d1
        t0 = time.monotonic()
        d.stop(timeout=20)
        assert time.monotonic() - t0 < 10
        assert srv.digest("slow") == d1
        path = os.path.join(d.state_dir, "history.jsonl")
        assert not os.path.exists(path) or open(path).read() == ""
        time.sleep(0.5)
        assert rx.got("/hook") == []
    finally:
        rx.stop()
