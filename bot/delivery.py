"""Delivery status of outbound messages, as Twilio's status callbacks report it."""
from __future__ import annotations

# Callbacks can arrive out of order; a status only replaces one of a lower rank, so the final one wins.
RANK = {
    "accepted": 0, "scheduled": 0, "queued": 1, "sending": 2, "sent": 3,
    "delivered": 4, "undelivered": 4, "failed": 4, "read": 5, "canceled": 4,
}
STATUS_TTL = 7 * 86400

_RECORD = """
local current = redis.call('hget', KEYS[1], 'status')
local rank = tonumber(ARGV[2])
if current then
  local have = tonumber(redis.call('hget', KEYS[1], 'rank') or '-1')
  if have > rank then return 0 end
end
redis.call('hset', KEYS[1], 'status', ARGV[1], 'rank', rank, 'error', ARGV[3])
redis.call('expire', KEYS[1], ARGV[4])
return 1
"""


def status_key(message_sid: str) -> str:
    return f"s:{message_sid}"


def record_status(redis_client, message_sid: str, status: str, error_code: str = "") -> bool:
    """Keep the most advanced status seen for a message; True when this one was kept."""
    rank = RANK.get(status, 0)
    script = redis_client.register_script(_RECORD)
    return bool(script(keys=[status_key(message_sid)], args=[status, rank, error_code, STATUS_TTL]))


def latest_status(redis_client, message_sid: str) -> str | None:
    raw = redis_client.hget(status_key(message_sid), "status")
    return raw.decode() if raw else None
