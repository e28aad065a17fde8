"""The `helpline` command: run the help line, talk to it, and check its flows, triage and resources."""
from __future__ import annotations

import errno
import html
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import date

import click

from .settings import MAX_CAPACITY


# Threads, not one request per process: the chat's live stream stays open for a minute and must
# not take a whole web process (the Procfile uses the same settings).
GUNICORN_THREADS = ("--worker-class", "gthread", "--threads", "8", "--timeout", "30")


def _app():
    from . import create_app
    from .errors import ConfigurationError

    try:
        return create_app()
    except ConfigurationError as exc:  # a bad setting: one line for the operator, not a traceback
        raise click.ClickException(str(exc)) from None


@click.group()
def main():
    """The help line's operator commands."""


@main.command()
@click.option("--port", default=5000, show_default=True, envvar="PORT", type=click.IntRange(1, 65535),
              help="the web server's port (or PORT in the environment)")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--workers", default=2, show_default=True, help="gunicorn web processes")
def run(port, host, workers):
    """Start everything: embedded Redis (unless REDIS_URL is set), the web app and an RQ worker."""
    from .crypto import ensure_keys
    from .redis_server import EmbeddedRedis
    from .settings import DEFAULTS, from_environ, production_problems

    # Before anything starts: gunicorn on a taken port retries for five seconds, logs five times and
    # leaves the rest running with no web server.
    problem = _port_problem(host, port)
    if problem:
        raise click.ClickException(f"cannot listen on {host}:{port}: {problem} (choose another with --port or PORT)")
    stop = _StopSignal()
    app_root = os.path.abspath(os.environ.get("HELPLINE_INSTANCE_PATH", "instance"))
    config = {**DEFAULTS, **from_environ()}
    problems = production_problems(config)
    if problems:  # as the web app would refuse them, but before a banner and three processes
        raise click.ClickException("the settings are not fit to run: " + "; ".join(problems))
    ensure_keys(config, app_root)  # once, before the processes that read the keys start
    env = dict(os.environ, HELPLINE_INSTANCE_PATH=app_root)
    server = None
    children: dict[str, subprocess.Popen] = {}  # stopped here; the embedded Redis is stopped last, by its owner
    bindir = os.path.dirname(sys.executable)
    try:
        if not config.get("REDIS_URL"):
            server = EmbeddedRedis(os.path.join(app_root, "redis"))
            env["REDIS_URL"] = server.start()
        # Sessions of their own: a Ctrl-C reaches this process only, which stops them in order and says so.
        children["the web server (gunicorn)"] = subprocess.Popen(
            [os.path.join(bindir, "gunicorn"), "--config", "python:bot.gunicorn_conf", "--workers", str(workers),
             "--bind", f"{host}:{port}", *GUNICORN_THREADS, "bot:create_app()"], env=env, start_new_session=True)
        children["the worker (rq)"] = subprocess.Popen([os.path.join(bindir, "helpline"), "worker"], env=env,
                                                       start_new_session=True)
        # A Redis that was already running (another `helpline run`'s) is not ours to watch or stop.
        watched = {**children, **({"the embedded Redis": server.process} if server and server.process else {})}
        died = _wait_until_listening(host, port, watched, stop)
        if not died and not stop.requested:
            click.echo(_banner(host, port, bindir))
        while not died and not stop.requested:
            time.sleep(0.2)
            died = _first_dead(watched)
    finally:
        for child in children.values():
            if child.poll() is None:
                child.terminate()
        for child in children.values():
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if server and not server.stop(unless_shared=True):  # last: the others use it until they stop
            click.echo("Left the embedded Redis running: another helpline process is using it.")
    if died:
        name, code = died
        how = f"was killed by signal {-code}" if code < 0 else f"stopped on its own (exit code {code})"
        raise click.ClickException(f"{name} {how}; stopped the rest of the help line")
    click.echo("Stopped the help line.")


def _command_name(bindir: str) -> str:
    """How to type `helpline` from here: the bare name when PATH finds this one, else its path."""
    mine = os.path.join(bindir, "helpline")
    if shutil.which("helpline") == mine:
        return "helpline"
    relative = os.path.relpath(mine)
    return mine if relative.startswith("..") else relative


class _StopSignal:
    """Ctrl-C or SIGTERM, heard once: `requested` turns true and the run loop stops everything."""

    def __init__(self):
        self.requested = False
        signal.signal(signal.SIGINT, self._heard)
        signal.signal(signal.SIGTERM, self._heard)

    def _heard(self, *_):
        self.requested = True


def _port_problem(host: str, port: int) -> str | None:
    """Why gunicorn could not listen on host:port now, or None when it could."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        return f"unknown host ({exc.strerror})"
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            return "the port is taken" if exc.errno == errno.EADDRINUSE else exc.strerror
    return None


def _first_dead(children: dict) -> tuple[str, int] | None:
    return next(((name, child.returncode) for name, child in children.items() if child.poll() is not None), None)


def _wait_until_listening(host: str, port: int, children: dict, stop: _StopSignal, timeout: float = 60):
    """Until the web server answers (so the banner is true), a child dies (returned) or a stop is asked."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop.requested:
        died = _first_dead(children)
        if died:
            return died
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return None
        except OSError:
            time.sleep(0.1)
    return None


def _banner(host: str, port: int, bindir: str) -> str:
    url = f"http://{host}:{port}"
    helpline = _command_name(bindir)
    return f"""
The help line is running.
  Front door (what is running, next steps):  {url}/
  Web chat:  {url}/chat        Console: {url}/console
  Add a counsellor, to sign in to the console:  {helpline} counsellor add NAME --supervisor
  Talk to it like a texter, in this terminal:   {helpline} chat   (--as web, --lang es)
  Send one signed SMS webhook to this server:   {helpline} sms "hola" --url {url}/sms
Press Ctrl-C to stop.
"""


@main.command()
@click.option("--burst", is_flag=True, help="stop when the queue is empty")
def worker(burst):
    """Run an RQ worker (with the scheduler) on the app's settings."""
    from workers.worker import run as run_worker

    run_worker(burst=burst)


@main.command()
@click.option("--as", "channel", type=click.Choice(["sms", "web"]), default="sms", show_default=True,
              help="text as from a phone (the terminal channel, which behaves as SMS does) or as in the web chat")
@click.option("--lang", default=None, help="the language the web chat opens in (en or es; with --as web)")
@click.option("--name", default=None, help="the phone texter's address, to come back to a conversation (default: a new one)")
def chat(channel, lang, name):
    """Text the help line from this terminal, through the same engine and store as /sms and /chat.

    A counsellor's replies (from the console of a running help line on the same Redis) and the
    closing message appear as they are sent."""
    from flows.catalog import LANGUAGES

    from .terminal_chat import SmsTexter, WebTexter, talk

    if channel == "sms" and lang:
        raise click.UsageError("--lang is the web chat's choice (--as web); a text is answered in the language it "
                               "is written in")
    if channel == "web" and name:
        raise click.UsageError("--name is a phone texter's address (--as sms); a web chat is new each time")
    if lang and lang not in LANGUAGES:
        raise click.BadParameter(f"one of {', '.join(LANGUAGES)}", param_hint="--lang")
    app = _app()
    texter = WebTexter(app, lang or "en") if channel == "web" else SmsTexter(app, name)
    if sys.stdin.isatty():
        click.echo("Type a message as a texter would (Ctrl-D to leave).")
    try:
        with app.app_context():
            talk(app, texter, interactive=sys.stdin.isatty())
    finally:
        if app.extensions.get("embedded_redis"):
            app.extensions["redis"].connection_pool.disconnect()  # our own connections are not "others"
            if not app.extensions["embedded_redis"].stop(unless_shared=True):  # only if this command started it
                click.echo("Left the embedded Redis running: another helpline process is using it.")


@main.command("sms")
@click.argument("text")
@click.option("--from", "sender", default="+15555550100", show_default=True)
@click.option("--url", default="http://127.0.0.1:5000/sms", show_default=True)
def sms(text, sender, url):
    """Post one SMS webhook to a running help line, signed as Twilio signs it, and print the TwiML."""
    import requests
    from twilio.request_validator import RequestValidator

    from .crypto import ensure_keys
    from .settings import DEFAULTS, from_environ

    config = {**DEFAULTS, **from_environ()}
    ensure_keys(config, os.path.abspath(os.environ.get("HELPLINE_INSTANCE_PATH", "instance")))
    form = {"From": sender, "To": "+15555550199", "Body": text, "MessageSid": "SM" + secrets.token_hex(16),
            "AccountSid": "AC" + "0" * 32, "NumMedia": "0"}
    signature = RequestValidator(config["TWILIO_AUTH_TOKEN"]).compute_signature(url, form)
    answer = requests.post(url, data=form, headers={"X-Twilio-Signature": signature}, timeout=15)
    click.echo(f"{answer.status_code} {answer.text}")


@main.group()
def flows():
    """Check or draw the conversation flows."""


@flows.command("check")
def flows_check():
    """Validate every flow and catalog; point at file and line for each problem."""
    from flows.catalog import Catalog, CatalogError
    from flows.engine import ENGINE_KEYS
    from flows.nlu import IntentModel, ModelError
    from flows.spec import HERE, Flow, FlowError
    from flows.wrapup import WrapupError, WrapupForm

    problems = []
    try:
        catalog = Catalog.load()
        labels = IntentModel.load().labels
        for path in sorted(HERE.glob("*.yaml")):
            if path.name in ("resources.yaml", "triage.yaml", "canned.yaml", "wrapup.yaml"):
                continue
            problems += Flow.load(path).check(catalog, ENGINE_KEYS, intents=labels)
    except (FlowError, CatalogError, ModelError) as exc:
        problems.append(str(exc))
    try:
        WrapupForm.load()
    except WrapupError as exc:
        problems += exc.problems
    for line in problems:
        click.echo(line, err=True)
    if problems:
        sys.exit(1)
    click.echo("flows ok")


@flows.command("diagram")
@click.option("--html", "page", type=click.Path(dir_okay=False, writable=True), default=None,
              help="write a page that draws the diagram in a browser, instead of printing its source")
def flows_diagram(page):
    """Print the conversation as a Mermaid state diagram (or write it as a page with --html)."""
    from flows.diagram import mermaid
    from flows.spec import Flow

    flow = Flow.load()
    source = mermaid(flow)
    if page is None:
        click.echo(source)
        click.echo("Paste it into https://mermaid.live to see it drawn, or write a page that draws it: "
                   "helpline flows diagram --html diagram.html", err=True)
        return
    try:
        with open(page, "w", encoding="utf-8") as out:
            out.write(DIAGRAM_PAGE.format(title=html.escape(flow.name), source=html.escape(source)))
    except OSError as exc:
        raise click.ClickException(f"cannot write {page}: {exc.strerror}") from None
    click.echo(f"wrote {page}: open it in a browser. It draws the diagram with Mermaid from cdn.jsdelivr.net; "
               f"offline it shows the diagram's source.")


# The diagram, drawn by Mermaid's script from a CDN. The source is the page's text, so without the
# script (offline) the page still shows it, readable; once drawn, it stays below the drawing.
DIAGRAM_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}: the conversation</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }}
pre {{ white-space: pre-wrap; background: #f4f4f4; padding: 1rem; font-size: 0.85rem; }}
</style>
</head>
<body>
<h1>{title}: the conversation as a state diagram</h1>
<p>Drawn by Mermaid, loaded from cdn.jsdelivr.net. Offline, the diagram's Mermaid source shows below instead;
paste it into https://mermaid.live to draw it elsewhere.</p>
<pre class="mermaid">{source}</pre>
<details><summary>Mermaid source</summary><pre>{source}</pre></details>
<script type="module">
import mermaid from "https://cdn.jsdelivr.net/npm/mermaid@11/dist/mermaid.esm.min.mjs";
mermaid.initialize({{ startOnLoad: true, securityLevel: "strict" }});
</script>
</body>
</html>
"""


@main.group()
def nlu():
    """Fit, measure and try the intent model (flows/intents)."""


@nlu.command("train")
@click.option("--check", is_flag=True, help="fail if flows/intents/model.json is not what the examples give")
def nlu_train(check):
    """Fit the intent model on flows/intents/*.yaml and write flows/intents/model.json (needs the train extra)."""
    from flows import nlu_train as training
    from flows.nlu import MODEL_PATH

    doc = training.train()
    if check:
        kept = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
        if not training.same_model(kept, json.loads(json.dumps(doc))):
            click.echo(f"{MODEL_PATH} is out of date: run `helpline nlu train`", err=True)
            sys.exit(1)
        click.echo("model up to date")
        return
    training.write(doc)
    click.echo(f"wrote {MODEL_PATH}: {len(doc['labels'])} intents, {len(doc['features'])} n-grams")


@nlu.command("eval")
@click.option("--data", "folder", default="tests/data", show_default=True, type=click.Path(exists=True))
def nlu_eval(folder):
    """Precision, recall and F1 per intent on the held-out lines, in both languages, and the triage union."""
    from pathlib import Path

    from flows import nlu_train as training
    from flows.engine import CONFIDENT, DANGER, model_hears_danger

    from .extensions import flow_engine

    engine = flow_engine("Help line")  # the model and lexicon a web process uses
    model, triage = engine.intents, engine.triage
    folder = Path(folder)
    for name in ("intents_heldout", "intents_fresh", "intents_fresh2"):
        path = folder / f"{name}.tsv"
        if not path.exists():
            continue
        rows = training.read_tsv(path)
        readings = [model.read(r["text"]) for r in rows]
        click.echo(training.evaluate(model, rows, name).text)
        for lang in ("en", "es"):
            part = [r for r in rows if r["lang"] == lang]
            click.echo(f"  {lang}: macro F1 {training.evaluate(model, part, name).macro_f1:.3f} ({len(part)} lines)")
        sure = sum(reading.confidence >= CONFIDENT for reading in readings)
        click.echo(f"  acted on (confidence >= {CONFIDENT}): {sure / len(rows):.1%}; the rest are asked")
        for intent in ("not_safe_now", "danger_now"):
            mine = [(r, reading) for r, reading in zip(rows, readings) if r["intent"].split(".")[0] == intent]
            heard = [r for r, reading in mine if engine.decide(reading) == intent
                     or (intent == "danger_now" and model_hears_danger(reading, False))]
            click.echo(f"  {intent} as the engine hears it: recall {len(heard) / max(1, len(mine)):.1%}")
        click.echo("")
    lang_path = folder / "language_fresh.tsv"
    if lang_path.exists():
        accuracy, mistakes = training.language_accuracy(model, training.read_tsv(lang_path))
        click.echo(f"language_fresh: accuracy {accuracy:.1%}; mistakes {dict(mistakes)}\n")
    click.echo(f"triage with the intent model (danger_now at p >= {DANGER} is an emergency too):")
    for path in sorted(folder.glob("triage_*.tsv")):
        rows = training.read_tsv(path)
        found = {"lexicon": [], "both": []}
        for r in rows:
            assessed = triage.assess(r["text"])
            alone = assessed.level == "emergency"
            found["lexicon"].append(alone)
            found["both"].append(alone or model_hears_danger(model.read(r["text"]), assessed.denied))
        figures = []
        for how, hits in found.items():
            emerg = [h for h, r in zip(hits, rows) if r["level"] == "emergency"]
            normal = [h for h, r in zip(hits, rows) if r["level"] == "normal"]
            figures.append(f"{how}: emergency recall {sum(emerg) / max(1, len(emerg)):.1%}, "
                           f"normal->emergency {sum(normal) / max(1, len(normal)):.1%}")
        click.echo(f"  {path.name}: " + "; ".join(figures))


@nlu.command("read")
@click.argument("text")
def nlu_read(text):
    """What the model reads TEXT as: the likeliest intents and the language, as JSON."""
    from flows.nlu import IntentModel

    r = IntentModel.load().read(text)
    click.echo(json.dumps({"intent": r.intent, "confidence": round(r.confidence, 3), "lang": r.lang,
                           "lang_confidence": round(r.lang_confidence, 3),
                           "next": [[label, round(p, 3)] for label, p in r.ranked[1:4]]}, ensure_ascii=False))


@main.command()
@click.option("--explain", is_flag=True, help="show which patterns matched, and what the intent model reads")
@click.option("--json", "as_json", is_flag=True, help="one line of JSON, for scripts")
@click.argument("text")
def triage(explain, as_json, text):
    """Score TEXT as emergency, high or normal, as the triage lexicon does for every message."""
    from flows.engine import DANGER, model_hears_danger
    from flows.nlu import IntentModel
    from flows.triage import Triage

    assessed = Triage.load().assess(text)
    # The engine reads every message with the intent model too: what the help line does is either's verdict.
    reading = IntentModel.load().read(text)
    danger, heard = reading.probability("danger_now"), model_hears_danger(reading, assessed.denied)
    if as_json:
        answer = {**assessed.to_dict(explain=explain), "help_line": "emergency" if heard else assessed.level,
                  "intent_danger": round(danger, 3)}
        click.echo(json.dumps(answer, ensure_ascii=False))
        return
    click.echo(f"{assessed.level}: " + (", ".join(assessed.matched) or "no pattern matched"))
    if not explain:
        return
    for hit in assessed.hits:
        click.echo(f'  {hit.id} ({hit.level}) matched "{hit.span}"')
        click.echo(f"    pattern: {hit.pattern}")
    if assessed.self_harm:
        click.echo("  self-harm: the reply gives 988 as well as 911")
    if assessed.denied:
        click.echo("  danger words were found but set aside, as negated or everyday speech")
    why = "but the danger words were set aside" if assessed.denied and danger >= DANGER else f"it takes {DANGER}"
    click.echo(f"  intent model: danger_now {danger:.2f}, {'an' if heard else 'not an'} emergency on its own ({why})")
    if heard and assessed.level != "emergency":
        click.echo("  so the help line answers it as an emergency, though no emergency pattern matched")


@main.group()
def resources():
    """The local resource directory."""


@resources.command("check")
@click.option("--warn-only", is_flag=True,
              help="list the entries past their review date, but exit 0 (entries with errors still fail)")
@click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="check as of this day (yyyy-mm-dd) instead of today")
def resources_check(warn_only, today):
    """Refuse entries without a source; fail on entries past their review date (180 days after verified_on,
    or never verified): they are still sent to texters, with the national hotline added."""
    from flows.resources import STALE_AFTER_DAYS, ResourceDirectory

    report = ResourceDirectory.load().check(today=today.date() if today else date.today())
    for line in report.errors:
        click.echo(f"error: {line}", err=True)
    for line in report.due:
        click.echo(f"past review: {line}", err=True)
    for line in report.warnings:
        click.echo(f"warning: {line}", err=True)
    click.echo(f"{len(report.errors)} errors, {len(report.due)} past review, {len(report.warnings)} warnings")
    if report.due:
        click.echo(f"{len(report.due)} listing(s) past review are still offered, with the National Human "
                   f"Trafficking Hotline added: re-check each with its source or by phone, then set verified_on "
                   f"(review every {STALE_AFTER_DAYS} days; see REVIEW ROUTINE in flows/resources.yaml)")
    if report.errors or (report.due and not warn_only):
        sys.exit(1)


@resources.command("export")
@click.option("--hsds", "out_dir", required=True, type=click.Path(file_okay=False),
              help="write the listings as Open Referral HSDS 3.0 JSON (DIR/services.json)")
def resources_export(out_dir):
    """Write the listings for other tools to read: Open Referral HSDS 3.0 service records."""
    from flows import hsds
    from flows.resources import ResourceDirectory

    directory = ResourceDirectory.load()
    path = hsds.export(directory, out_dir)
    click.echo(f"{len(directory.usable())} listing(s) written to {path} (Open Referral HSDS 3.0)")


@resources.command("import")
@click.argument("source", type=click.Path(exists=True))
@click.option("--write", is_flag=True, help="apply it to flows/resources.yaml (default: only report)")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="the directory file to compare with and write (default: flows/resources.yaml)")
def resources_import(source, write, path):
    """Read Open Referral HSDS 3.0 services (a FILE, or every .json in a DIR), check them against the HSDS
    schema, and report what would change in the directory: added, changed fields, not in the import. Writes
    only with --write. Exit 2 when a file or record does not pass the schema."""
    from pathlib import Path

    from flows import hsds
    from flows.resources import ResourceDirectory

    try:
        records, problems = hsds.read(Path(source))
    except hsds.HsdsError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    for line in problems:
        click.echo(f"error: {line}", err=True)
    if problems:
        click.echo(f"{len(problems)} schema error(s): nothing imported", err=True)
        sys.exit(2)
    directory = ResourceDirectory.load(path)
    report = hsds.compare(directory, records, Path(source).name)
    for line in report.lines():
        click.echo(line)
    if write and (report.added or report.changed):
        hsds.write(directory, report, Path(source).name)
        check = ResourceDirectory.load(path).check()
        click.echo(f"written to {directory.display_path}; `helpline resources check` says: {len(check.errors)} "
                   f"error(s), {len(check.warnings)} warning(s). Look over `git diff` before you commit it.")


@resources.command("export-reviews")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="the directory file to write (default: flows/resources.yaml)")
def resources_export_reviews(path):
    """Write the listings supervisors verified in the console into flows/resources.yaml (verified_on and
    reviewed_by), for an operator to look over and commit: the file in git stays the source of truth."""
    from flows.resources import ResourceDirectory

    from .resource_reviews import export

    app = _app()
    directory = ResourceDirectory.load(path)
    with app.app_context():
        written = export(app.extensions["redis"], directory)
    for resource_id in written:
        click.echo(f"verified: {resource_id}")
    click.echo(f"{len(written)} review(s) written into {directory.display_path}" +
               ("; check `git diff` and commit it" if written else " (none newer than the file)"))


@main.group()
def keys():
    """The data key (HELPLINE_DATA_KEY): generate a new one, re-encrypt under it, check."""


@keys.command("generate")
def keys_generate():
    """Print a new Fernet key to put in front of HELPLINE_DATA_KEY."""
    from .keys import generate

    click.echo(generate())


@keys.command("rotate")
def keys_rotate():
    """Re-encrypt every stored value under the newest key (the first of HELPLINE_DATA_KEY)."""
    if _walk_encrypted(apply=True).failed:
        sys.exit(1)


@keys.command("check")
def keys_check():
    """Exit 0 only when the newest key alone opens every stored value (then older keys may go)."""
    report = _walk_encrypted(apply=False)
    if report.stale or report.unreadable:
        sys.exit(1)


def _walk_encrypted(apply: bool):
    from .keys import rotate

    app = _app()
    report = rotate(app.extensions["redis"], app.extensions["vault"], apply=apply)
    click.echo(report.summary())
    for name in report.failed:
        click.echo(f"unreadable under every configured key: {name}", err=True)
    return report


@main.group()
def counsellor():
    """Console accounts: add, list and remove counsellors."""


def _password() -> str:
    """Asked twice at a terminal, or the first line of stdin when piped."""
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return sys.stdin.readline().rstrip("\r\n")


@counsellor.command("add")
@click.argument("name")
@click.option("--supervisor", is_flag=True, help="may see every conversation and the audit trail")
@click.option("--capacity", "places", type=click.IntRange(1, MAX_CAPACITY), default=None,
              help="conversations NAME may hold at once (default: COUNSELLOR_CAPACITY)")
def counsellor_add(name, supervisor, places):
    """Create NAME (or set a new password); the password is asked twice, or read from stdin when piped."""
    from .console import accounts, capacity

    try:
        name = accounts.clean_name(name)
    except accounts.AccountError as exc:
        raise click.BadParameter(str(exc), param_hint="NAME") from exc
    password = _password()
    app = _app()
    try:
        with app.app_context():
            accounts.add(app.extensions["redis"], name, password, supervisor)
    except accounts.AccountError as exc:
        raise click.ClickException(str(exc)) from exc
    if places is not None:
        capacity.set_capacity(app.extensions["redis"], name, places)
    click.echo(f"{'supervisor' if supervisor else 'counsellor'} {name} saved")


@counsellor.command("capacity")
@click.argument("name")
@click.argument("places", required=False, metavar="[N|default]")
def counsellor_capacity(name, places):
    """Show how many conversations NAME may hold at once, or set it (1-20; "default": COUNSELLOR_CAPACITY)."""
    from .console import accounts, capacity

    app = _app()
    client, name = app.extensions["redis"], (name or "").strip().lower()
    if accounts.get(client, name) is None:
        raise click.ClickException(f"no counsellor named {name!r}")
    with app.app_context():
        if places is not None:
            if places != "default" and not (places.isdigit() and 1 <= int(places) <= MAX_CAPACITY):
                raise click.BadParameter(f"a number from 1 to {MAX_CAPACITY}, or default", param_hint="N")
            capacity.set_capacity(client, name, None if places == "default" else int(places))
        own = capacity.capacity(client, name)
    click.echo(f"{name} may hold {own} conversation{'s' if own != 1 else ''} at once")


@counsellor.command("list")
def counsellor_list():
    """Every account, whether it is a supervisor and whether it is online."""
    from .console import accounts

    client = _app().extensions["redis"]
    online = set(accounts.online(client))
    for person in accounts.everyone(client):
        role = "supervisor" if person.supervisor else "counsellor"
        click.echo(f"{person.name}\t{role}\t{'online' if person.name in online else 'away'}")


@counsellor.command("sessions")
@click.argument("name")
@click.option("--end", is_flag=True, required=True, help="end every console session of NAME now")
def counsellor_sessions(name, end):
    """End NAME's console sessions (a lost laptop, a shared computer); their next request asks to sign in."""
    from .console import accounts

    if not accounts.end_sessions(_app().extensions["redis"], name):
        raise click.ClickException(f"no counsellor named {name!r}")
    click.echo(f"{name}'s console sessions ended")


@counsellor.command("remove")
@click.argument("name")
def counsellor_remove(name):
    """Delete NAME's account; its console sessions end at their next request."""
    from .console import accounts

    if not accounts.remove(_app().extensions["redis"], name):
        raise click.ClickException(f"no counsellor named {name!r}")
    click.echo(f"{name} removed")


@main.group()
def partner():
    """Partner agencies' accounts: they see the warm referrals sent to their agency, nothing else."""


@partner.command("add")
@click.argument("name")
@click.option("--agency", required=True, metavar="ID", help="an agency id of flows/resources.yaml (`agency:`)")
def partner_add(name, agency):
    """Create NAME for AGENCY's intake worker (or set a new password); the password as for counsellors."""
    from .console import accounts
    from .referrals import agencies

    app = _app()
    known = agencies(app.extensions["helpline"].flows.resources)
    if agency not in known:
        raise click.BadParameter(f"no agency {agency!r} in flows/resources.yaml; known: {', '.join(sorted(known))}",
                                 param_hint="--agency")
    try:
        name = accounts.clean_name(name)
    except accounts.AccountError as exc:
        raise click.BadParameter(str(exc), param_hint="NAME") from exc
    password = _password()
    try:
        with app.app_context():
            accounts.add(app.extensions["redis"], name, password, agency=agency)
    except accounts.AccountError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"partner {name} of {known[agency].name()} saved")


@partner.command("list")
def partner_list():
    """Every partner account and its agency."""
    from .console import accounts

    for person in accounts.partners(_app().extensions["redis"]):
        click.echo(f"{person.name}\t{person.agency}")


@partner.command("remove")
@click.argument("name")
def partner_remove(name):
    """Delete partner NAME's account; its sessions end at their next request. Its agency's referrals stay."""
    from .console import accounts

    client = _app().extensions["redis"]
    found = accounts.get(client, (name or "").strip().lower())
    if found is None or not found.agency or not accounts.remove(client, found.name):
        raise click.ClickException(f"no partner named {name!r}")
    click.echo(f"{found.name} removed")


@main.command()
@click.option("--month", default=None, metavar="YYYY-MM", help="the month to count (default: this month so far)")
@click.option("--weeks", default=None, metavar="N", help="instead of a month: the last N weeks, one column a week")
@click.option("--csv", "as_csv", is_flag=True, help="print CSV, as /console/reports.csv does")
def report(month, weeks, as_csv):
    """Contacts by channel, language, path, reason, outcome and the wrap-up form's choices, with wait-time
    percentiles: the rows of /console/reports, counts from 1 to 4 shown as <5."""
    from .reports import PeriodError, build, periods_asked

    app = _app()
    stats = app.extensions["stats"]
    try:
        name, periods = periods_asked(month, weeks, stats.day(stats.clock()))
    except PeriodError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    with app.app_context():
        shown = build(stats, name, periods)
    click.echo(shown.csv() if as_csv else shown.text(), nl=False)
