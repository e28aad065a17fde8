"""The `helpline` command: run the help line, talk to it, and check its flows, triage and resources."""
from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from datetime import date

import click


# Threads, not one request per process: the chat's live stream stays open for a minute and must
# not take a whole web process (the Procfile uses the same settings).
GUNICORN_THREADS = ("--worker-class", "gthread", "--threads", "8", "--timeout", "30")


def _app():
    from . import create_app

    return create_app()


@click.group()
def main():
    """The help line's operator commands."""


@main.command()
@click.option("--port", default=5000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--workers", default=2, show_default=True, help="gunicorn web processes")
def run(port, host, workers):
    """Start everything: embedded Redis (unless REDIS_URL is set), the web app and an RQ worker."""
    from .crypto import ensure_keys
    from .redis_server import EmbeddedRedis
    from .settings import DEFAULTS, from_environ

    app_root = os.path.abspath(os.environ.get("HELPLINE_INSTANCE_PATH", "instance"))
    config = {**DEFAULTS, **from_environ()}
    ensure_keys(config, app_root)  # once, before the processes that read the keys start
    env = dict(os.environ, HELPLINE_INSTANCE_PATH=app_root)
    server = None
    if not config.get("REDIS_URL"):
        server = EmbeddedRedis(os.path.join(app_root, "redis"))
        env["REDIS_URL"] = server.start()
    bindir = os.path.dirname(sys.executable)
    procs = [
        subprocess.Popen([os.path.join(bindir, "gunicorn"), "--config", "python:bot.gunicorn_conf", "--workers", str(workers),
                          "--bind", f"{host}:{port}", *GUNICORN_THREADS, "bot:create_app()"], env=env),
        subprocess.Popen([os.path.join(bindir, "helpline"), "worker"], env=env),
    ]
    url = f"http://{host}:{port}"
    click.echo(f"""
The help line is running at {url}
  Talk to it like a texter, without a Twilio account:   .venv/bin/helpline chat
  Send one signed SMS webhook to the running server:   .venv/bin/helpline sms "hola"
  Web chat:  {url}/chat        Console: {url}/console
  Add a counsellor:  .venv/bin/helpline counsellor add NAME --supervisor
Press Ctrl-C to stop.
""")
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping and all(p.poll() is None for p in procs):
            time.sleep(0.5)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        if server:
            server.stop()


@main.command()
@click.option("--burst", is_flag=True, help="stop when the queue is empty")
def worker(burst):
    """Run an RQ worker (with the scheduler) on the app's settings."""
    from workers.worker import run as run_worker

    run_worker(burst=burst)


@main.command()
@click.option("--as", "address", default=None, help="a name for this texter (default: a new one)")
def chat(address):
    """Text the bot from this terminal, through the same engine and store as /sms."""
    from .engine import Inbound
    from .extensions import get_helpline

    app = _app()
    address = address or f"terminal-{secrets.token_hex(4)}"
    click.echo("Type a message as a texter would (Ctrl-D to leave).")
    with app.app_context():
        helpline = get_helpline()
        while True:
            try:
                text = input("you> ")
            except EOFError:
                click.echo()
                break
            outcome = helpline.handle(Inbound("cli", address, text, message_id=secrets.token_hex(8)))
            for reply in outcome.replies:
                click.echo(click.style("bot> ", fg="green") + reply.replace("\n", "\n     "))
    if app.extensions.get("embedded_redis"):
        app.extensions["embedded_redis"].stop()  # only if this command started it


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

    problems = []
    try:
        catalog = Catalog.load()
        labels = IntentModel.load().labels
        for path in sorted(HERE.glob("*.yaml")):
            if path.name in ("resources.yaml", "triage.yaml", "canned.yaml"):
                continue
            problems += Flow.load(path).check(catalog, ENGINE_KEYS, intents=labels)
    except (FlowError, CatalogError, ModelError) as exc:
        problems.append(str(exc))
    for line in problems:
        click.echo(line, err=True)
    if problems:
        sys.exit(1)
    click.echo("flows ok")


@flows.command("diagram")
def flows_diagram():
    """Print the conversation as a Mermaid state diagram."""
    from flows.diagram import mermaid
    from flows.spec import Flow

    click.echo(mermaid(Flow.load()))


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
@click.option("--explain", is_flag=True, help="show which patterns matched")
@click.argument("text")
def triage(explain, text):
    """Score TEXT as emergency, high or normal, as JSON."""
    from flows.triage import Triage

    click.echo(json.dumps(Triage.load().assess(text).to_dict(explain=explain), ensure_ascii=False))


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
    if _walk_encrypted(apply=False).stale:
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


@counsellor.command("add")
@click.argument("name")
@click.option("--supervisor", is_flag=True, help="may see every conversation and the audit trail")
def counsellor_add(name, supervisor):
    """Create NAME (or set a new password); the password is asked twice, or read from stdin when piped."""
    from .console import accounts

    try:
        name = accounts.clean_name(name)
    except accounts.AccountError as exc:
        raise click.BadParameter(str(exc), param_hint="NAME") from exc
    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    app = _app()
    try:
        with app.app_context():
            accounts.add(app.extensions["redis"], name, password, supervisor)
    except accounts.AccountError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{'supervisor' if supervisor else 'counsellor'} {name} saved")


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
