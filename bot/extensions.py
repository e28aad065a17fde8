"""Clients the app needs, built once in init_app and kept in app.extensions; small accessors reach them."""
from __future__ import annotations

import functools
import logging
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import redis
from flask import Flask, current_app
from redis.sentinel import Sentinel
from rq import Queue
from rq.serializers import JSONSerializer
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client as TwilioClient

from flows import when
from flows.catalog import Catalog
from flows.engine import FlowEngine
from flows.nlu import IntentModel
from flows.resources import ResourceDirectory
from flows.spec import Flow
from flows.triage import Triage

from . import resource_reviews
from .crypto import Vault
from .engine import Helpline
from .hours import Staffing
from .metrics import Stats
from .redis_server import EmbeddedRedis
from .store import ConversationStore
from .waiting import WaitingQueue


_twilio_http_log = logging.getLogger("bot.twilio_http")
_twilio_http_log.setLevel(logging.WARNING)


def init_app(app: Flask) -> None:
    from . import erasure  # here, not above: it names the console's keys, and the console needs this module

    cfg = app.config
    if not cfg.get("REDIS_URL") and not cfg.get("REDIS_SENTINELS"):
        server = EmbeddedRedis(f"{app.instance_path}/redis")
        cfg["REDIS_URL"] = server.start()
        app.extensions["embedded_redis"] = server
    client = build_redis(cfg["REDIS_URL"], cfg.get("REDIS_SENTINELS"), cfg.get("REDIS_SENTINEL_MASTER"))
    vault = Vault(cfg["HELPLINE_DATA_KEY"], cfg["HELPLINE_HASH_KEY"])
    store = ConversationStore(client, vault, cfg["HELPLINE_RETENTION_DAYS"], cfg["HELPLINE_LOCK_WAIT"])
    queue = build_queue(client, cfg["RQ_QUEUE"])
    # Counsellors' messages have a queue of their own that workers empty first: a flood of alerts or a
    # slow alert webhook must not keep a texter waiting for a person's reply.
    replies = build_queue(client, cfg["RQ_QUEUE"] + "-replies")
    waiting = WaitingQueue(client)
    flows = flow_engine(cfg["HELPLINE_NAME"], cfg["HELPLINE_TIMEZONE"])
    stats = Stats(client, cfg["HELPLINE_TIMEZONE"], flows.flow)
    app.extensions.update(
        redis=client,
        vault=vault,
        store=store,
        queue=queue,
        replies=replies,
        queues=(replies, queue),  # in the order a worker serves them
        waiting=waiting,
        twilio=build_twilio(cfg),
        stats=stats,
        helpline=Helpline(store, flows, waiting, queue, stats=stats, staffing=Staffing.from_config(client, cfg),
                          transcript_max_chars=cfg["TRANSCRIPT_MAX_CHARS"],
                          erase_also=functools.partial(erasure.erase_leftovers, store)),
    )


def build_redis(url: str | None, sentinels: str | None = None, master: str | None = None) -> redis.Redis:
    """A client that fails fast: a webhook must answer Twilio well within its 15 seconds.

    With `sentinels` ("host:port,host:port") the client asks Redis Sentinel for the current master
    of `master` and follows a failover; a password and database come from `url` when it has them.
    """
    options = {"socket_timeout": 3, "socket_connect_timeout": 2, "health_check_interval": 30}
    if not sentinels:
        return redis.Redis.from_url(url, **options)
    hosts = [(host, int(port)) for host, _, port in (s.strip().rpartition(":") for s in sentinels.split(",") if s.strip())]
    parsed = urlparse(url or "")
    db = int(parsed.path.lstrip("/") or 0) if parsed.scheme.startswith("redis") else 0
    sentinel = Sentinel(hosts, socket_timeout=2, socket_connect_timeout=2)
    return sentinel.master_for(master or "helpline", password=parsed.password, username=parsed.username,
                               db=db, **options)


def build_queue(client: redis.Redis, name: str) -> Queue:
    # JSON, not pickle: a job's arguments stay readable plain ids.
    return Queue(name, connection=client, serializer=JSONSerializer)


def build_twilio(cfg) -> TwilioClient | None:
    if not (cfg.get("TWILIO_ACCOUNT_SID") and cfg.get("TWILIO_AUTH_TOKEN")):
        return None
    # A timeout, so a hung request cannot hold a worker; a logger of our own, because the client logs
    # query parameters (a texter's number, when we look a message up) at INFO.
    http = TwilioHttpClient(timeout=float(cfg.get("TWILIO_HTTP_TIMEOUT") or 10.0), logger=_twilio_http_log)
    client = TwilioClient(cfg["TWILIO_ACCOUNT_SID"], cfg["TWILIO_AUTH_TOKEN"], http_client=http)
    if cfg.get("TWILIO_API_BASE"):
        # Tests and staging point the real client at a server that answers like api.twilio.com.
        client.api.base_url = cfg["TWILIO_API_BASE"].rstrip("/")
    return client


def flow_engine(helpline_name: str, timezone: str = when.ZONE) -> FlowEngine:
    """The flow, catalogs, triage lexicon, intent model and resources, read and checked once per process.
    `timezone` (HELPLINE_TIMEZONE) is where a texter's "tomorrow after 6" is read."""
    return _flow_engine(helpline_name, timezone)  # one cache key whether the zone is given or not


@functools.lru_cache(maxsize=4)
def _flow_engine(helpline_name: str, timezone: str) -> FlowEngine:
    # Reviews from the console count at once: the directory asks the app's Redis on each reply.
    resources = ResourceDirectory.load(reviewed=resource_reviews.overlay)
    return FlowEngine(Flow.load(), Catalog.load(), Triage.load(), resources, helpline_name,
                      intents=IntentModel.load(), zone=ZoneInfo(timezone))


def get_redis() -> redis.Redis:
    return current_app.extensions["redis"]


def get_store() -> ConversationStore:
    return current_app.extensions["store"]


def get_queue() -> Queue:
    return current_app.extensions["queue"]


def get_replies_queue() -> Queue:
    return current_app.extensions["replies"]


def get_queues() -> tuple[Queue, ...]:
    return current_app.extensions["queues"]


def get_waiting() -> WaitingQueue:
    return current_app.extensions["waiting"]


def get_helpline() -> Helpline:
    return current_app.extensions["helpline"]


def get_twilio() -> TwilioClient | None:
    return current_app.extensions["twilio"]
