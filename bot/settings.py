"""Settings: defaults, then the environment, then a test override (in that order)."""
from __future__ import annotations

import os
from urllib.parse import urlsplit

DEFAULTS: dict[str, object] = {
    # Where Redis lives. Unset: an embedded Redis server in the instance folder.
    "REDIS_URL": None,
    # Redis Sentinel for a highly available Redis: "host:port,host:port" and the master's name.
    # REDIS_URL then only supplies a password and database (redis://:password@/0).
    "REDIS_SENTINELS": "",
    "REDIS_SENTINEL_MASTER": "helpline",
    # --- operations ---
    # Bearer token for /metrics; unset: /metrics answers only direct requests from this machine.
    "METRICS_TOKEN": None,
    # /healthz fails when no RQ worker has sent a heartbeat for this many seconds.
    "WORKER_HEARTBEAT_MAX_AGE": 120,
    # Log level of the JSON logs (one object per line on stderr).
    "LOG_LEVEL": "INFO",
    # What / shows. Empty: a status page for the operator in development, a 404 in production
    # (it says what runs, so the public should not see it); "off": a 404; an http(s) URL: a redirect there.
    "FRONT_DOOR": "",
    # Live streams (the console's and the chat's server-sent events) one web process holds at once.
    # Each holds a thread for up to a minute, so keep it under gunicorn's --threads (8): the other
    # threads answer webhooks. Past it a browser is told to come back in 10 s; the console polls meanwhile.
    "LIVE_STREAMS": 4,
    # Twilio credentials; unset, outbound SMS is disabled and the console says so.
    "TWILIO_ACCOUNT_SID": None,
    "TWILIO_AUTH_TOKEN": None,
    "TWILIO_FROM_NUMBER": None,
    "TWILIO_MESSAGING_SERVICE_SID": None,
    # Only for tests and staging: a base URL that answers like api.twilio.com.
    "TWILIO_API_BASE": None,
    # Seconds the Twilio client waits for an answer; a send that times out is looked up, then retried.
    "TWILIO_HTTP_TIMEOUT": 10.0,
    # Seconds before each retry of a send that failed for a passing reason (429, 5xx, timeout), comma-separated.
    "SEND_RETRY_SECONDS": "5,30,120,600",
    # The public https base URL Twilio calls; signatures are checked against it behind a proxy.
    "PUBLIC_URL": None,
    "SECRET_KEY": None,
    # Comma-separated keys (Fernet's key format), newest first: encrypt numbers and texts at rest.
    "HELPLINE_DATA_KEY": None,
    # Key for the HMAC that turns an address into a conversation id.
    "HELPLINE_HASH_KEY": None,
    # "production" refuses to start without real keys.
    "HELPLINE_ENV": "development",
    # The short, discreet name texters see.
    "HELPLINE_NAME": "Kern Support Line",
    "HELPLINE_RETENTION_DAYS": 30,
    # Audit entries hold no content; they are trimmed after this many days.
    "HELPLINE_AUDIT_RETENTION_DAYS": 365,
    # Minutes between two runs of the retention purge (workers.retention).
    "RETENTION_PURGE_MINUTES": 60,
    # Messages one sender may send to /sms per window; past it they are not processed.
    "SMS_RATE_LIMIT": 30,
    "SMS_RATE_WINDOW": 300,
    # Past the limit, this many emergencies per window are still handled in full.
    "SMS_EMERGENCY_LIMIT": 5,
    # Seconds a request may wait for another process to finish with the same conversation.
    "HELPLINE_LOCK_WAIT": 5.0,
    "MAX_CONTENT_LENGTH": 64 * 1024,
    "RQ_QUEUE": "helpline",
    # --- counsellor handoff and console ---
    # Counsellor hours, local time: "Mon-Fri 08:00-20:00; Sat 10:00-16:00". Empty: always staffed.
    "HELPLINE_HOURS": "",
    "HELPLINE_TIMEZONE": "America/Los_Angeles",
    # Typical minutes a counsellor spends per conversation; feeds the wait estimate.
    "HELPLINE_MINUTES_PER_CONVERSATION": 15,
    # An on-call supervisor's webhook: JSON POST on every emergency (ids only, no content).
    "ALERT_WEBHOOK_URL": None,
    # Console sessions end after this many idle minutes.
    "CONSOLE_IDLE_MINUTES": 20,
    # Conversations a counsellor may hold at once (1-20); an account can have its own
    # (helpline counsellor capacity NAME N). Supervisors may go past theirs.
    "COUNSELLOR_CAPACITY": 3,
    # An emergency waiting this many seconds while no online counsellor has a free place alerts the
    # supervisors (ALERT_WEBHOOK_URL and a banner in the console), once per wait.
    "EMERGENCY_UNATTENDED_SECONDS": 120,
    # argon2-cffi profile for counsellor passwords (argon2.profiles); tests use CHEAPEST.
    "CONSOLE_PASSWORD_HASH": "RFC_9106_LOW_MEMORY",
    # --- web chat ---
    # Where quick exit sends the visitor: a neutral page.
    "CHAT_EXIT_URL": "https://www.google.com/search?q=weather",
    # Sites allowed to embed the chat page in a frame (space-separated origins); empty: none.
    "CHAT_EMBED_ORIGINS": "",
    # Anonymous chat limits: new chats per client address per hour, messages per chat per minute
    # (a client address may send ten chats' worth, for a school or shelter behind one address).
    "CHAT_SESSIONS_PER_HOUR": 30,
    # New chats per minute from all addresses together: a botnet cannot fill Redis with chats.
    "CHAT_SESSIONS_PER_MINUTE_ALL": 120,
    # Messages one chat may send in all; far above any real conversation, a bound for a script.
    "CHAT_MAX_MESSAGES": 1000,
    # Characters of a conversation's own messages kept in full; past it each new one keeps its start.
    "TRANSCRIPT_MAX_CHARS": 200_000,
    # /healthz warns (and helpline_redis_memory_ratio shows) when Redis uses this share of maxmemory.
    "REDIS_MEMORY_WARN": 0.8,
    "CHAT_MESSAGES_PER_MINUTE": 20,
    # Proxies in front of the app that append the client's address to X-Forwarded-For; 0: none.
    "CHAT_PROXY_HOPS": 0,
    # Chats from one client address that may hold a live stream at once; the rest poll for replies.
    "CHAT_STREAMS_PER_ADDRESS": 2,
}

_INTS = {"WORKER_HEARTBEAT_MAX_AGE", "HELPLINE_RETENTION_DAYS", "HELPLINE_AUDIT_RETENTION_DAYS", "RETENTION_PURGE_MINUTES", "SMS_RATE_LIMIT",
         "SMS_RATE_WINDOW", "SMS_EMERGENCY_LIMIT",
         "MAX_CONTENT_LENGTH", "HELPLINE_MINUTES_PER_CONVERSATION", "CONSOLE_IDLE_MINUTES",
         "CHAT_SESSIONS_PER_HOUR", "CHAT_MESSAGES_PER_MINUTE", "CHAT_PROXY_HOPS", "LIVE_STREAMS",
         "CHAT_SESSIONS_PER_MINUTE_ALL", "CHAT_MAX_MESSAGES", "TRANSCRIPT_MAX_CHARS",
         "CHAT_STREAMS_PER_ADDRESS", "COUNSELLOR_CAPACITY", "EMERGENCY_UNATTENDED_SECONDS"}
_FLOATS = {"HELPLINE_LOCK_WAIT", "TWILIO_HTTP_TIMEOUT", "REDIS_MEMORY_WARN"}


def from_environ(environ: os._Environ | dict | None = None) -> dict[str, object]:
    """Settings read from the environment, converted to the type of their default."""
    environ = os.environ if environ is None else environ
    found: dict[str, object] = {}
    for name in DEFAULTS:
        raw = environ.get(name)
        if raw is None or raw == "":
            continue
        if name in _INTS:
            found[name] = int(raw)
        elif name in _FLOATS:
            found[name] = float(raw)
        else:
            found[name] = raw
    return found


ENVIRONMENTS = ("development", "production")
MIN_SECRET = 32  # characters of SECRET_KEY and HELPLINE_HASH_KEY in production (secrets.token_urlsafe(32) gives 43)


FRONT_DOOR_OFF = "off"


def front_door_problem(value) -> str | None:
    """FRONT_DOOR is empty, "off" or an http(s) address (bot.front_door); anything else, why not."""
    if not value or value == FRONT_DOOR_OFF:
        return None
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (reading it raises ValueError for "https://example.org:abc/" or :99999)
    except ValueError:
        parts = None
    if parts and parts.scheme in ("http", "https") and parts.hostname and not any(c.isspace() for c in value):
        return None
    return f"FRONT_DOOR: {value!r} is not empty, 'off' or an address like https://example.org"


MAX_CAPACITY = 20  # conversations at once; more than this is not counselling (bot.console.capacity)


def console_problems(config) -> list[str]:
    """COUNSELLOR_CAPACITY is 1 to MAX_CAPACITY conversations, EMERGENCY_UNATTENDED_SECONDS at least 1."""
    problems = []
    places, seconds = config.get("COUNSELLOR_CAPACITY"), config.get("EMERGENCY_UNATTENDED_SECONDS")
    if not isinstance(places, int) or isinstance(places, bool) or not 1 <= places <= MAX_CAPACITY:
        problems.append(f"COUNSELLOR_CAPACITY: {places!r} is not a number of conversations from 1 to {MAX_CAPACITY}")
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 1:
        problems.append(f"EMERGENCY_UNATTENDED_SECONDS: {seconds!r} is not a number of seconds (1 or more)")
    return problems


def production_problems(config) -> list[str]:
    """What keeps these settings from running a real help line; empty when nothing does (FRONT_DOOR and
    the console's limits are checked in every environment, like HELPLINE_ENV).

    HELPLINE_ENV itself must be one of ENVIRONMENTS: "Production" or a typo would otherwise run with
    generated development keys. In production every key must be set and long, PUBLIC_URL must be https
    (the Twilio signature is checked against it, never against the request's Host header), and Twilio
    must be able to send (an account and a From number or a Messaging Service)."""
    env = config.get("HELPLINE_ENV")
    if env not in ENVIRONMENTS:
        return [f"HELPLINE_ENV must be one of {', '.join(ENVIRONMENTS)}, not {env!r}"]
    door = front_door_problem(config.get("FRONT_DOOR"))
    everywhere = ([door] if door else []) + console_problems(config)
    if env != "production":
        return everywhere
    problems = [f"{name} is not set" for name in ("SECRET_KEY", "HELPLINE_DATA_KEY", "HELPLINE_HASH_KEY",
                                                   "TWILIO_AUTH_TOKEN", "TWILIO_ACCOUNT_SID", "PUBLIC_URL")
                if not config.get(name)]
    problems += [f"{name} is shorter than {MIN_SECRET} characters (helpline keys generate makes good ones)"
                 for name in ("SECRET_KEY", "HELPLINE_HASH_KEY") if config.get(name) and len(config[name]) < MIN_SECRET]
    if config.get("PUBLIC_URL") and not str(config["PUBLIC_URL"]).startswith("https://"):
        problems.append("PUBLIC_URL must start with https://")
    if not (config.get("TWILIO_FROM_NUMBER") or config.get("TWILIO_MESSAGING_SERVICE_SID")):
        problems.append("TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID is not set")
    return problems + everywhere
