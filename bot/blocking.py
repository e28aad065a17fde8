"""Blocked senders: a supervisor's block on one conversation's sender, for 24 hours, 7 days or for good.

A block is filed under a keyed hash of the conversation id (itself a keyed hash of channel and
address), `bk:<digest>`, never under the conversation id: the texter's DELETE erases what is named by
the conversation, and must not lift a block (an abuser would unblock himself by texting DELETE). The
record is sealed and holds no number and no message: the conversation id, the channel, when it ends,
who blocked and why, and when the sender was last answered. A timed block ends at its end time (and
Redis drops the record then); a permanent one stays listed on the supervisors' overview for review.

What a blocked sender gets (`answer`): the flow still reads every message, and whatever it does for
danger (911, the supervisors alerted) and for the carrier's keywords and erasing (STOP, START, HELP,
DELETE) stands; anything else is never queued and is answered with one neutral line (catalog key
`blocked`: the national lines, nothing of a block) at most once a day, then nothing.
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass

import redis

from flows.conversation import Conversation
from flows.engine import Effect, FlowEngine, Step, clean
from flows.spec import normalize

from . import audit, events
from .crypto import InvalidToken, Vault
from .errors import HelplineError
from .store import ConversationStore
from .waiting import WaitingQueue

KEY_PREFIX = "bk:"
INDEX = "blocks"  # sorted set: digest -> when the block ends (inf: permanent), for the overview
DURATIONS = {"24h": 24 * 3600, "7d": 7 * 24 * 3600, "permanent": None}
DURATION_WORDS = {"24h": "24 hours", "7d": "7 days", "permanent": "permanent"}
REASON_MAX = 200  # characters: a short note for the next supervisor, not a case file
LISTED_MAX = 500
# At most one answer a day: a person wrongly blocked (a phone that changed hands, a shared phone)
# who writes again another day still reads the national lines; an abuser gets one flat line a day
# whatever he writes, nothing to react to and nothing to spend.
NOTICE_EVERY = 24 * 3600
NOTICE = "blocked"  # the catalog key
# What a block never stops: the carrier's opt-out and opt-in, erasing, and danger.
KEPT_EFFECTS = frozenset({"opt_out", "opt_in", "erase", "emergency_alert"})
# The replies that go with them: 911 (and 988), the short "not safe now" line, and the keywords' answers.
KEPT_SAYINGS = frozenset({"emergency", "emergency_self_harm", "not_safe_now", "help", "stopped", "restarted",
                          "confirm_delete", "erased", "not_erased"})


class BlockError(HelplineError):
    """A block or unblock that cannot be done as asked (the message says why, for the supervisor)."""


@dataclass
class Block:
    digest: str
    conv: str
    channel: str
    duration: str
    until: float | None  # None: permanent
    by: str
    reason: str
    at: float
    told: float = 0.0  # when the sender last got the neutral line

    @property
    def key(self) -> str:
        return key(self.digest)

    def active(self, now: float) -> bool:
        return self.until is None or now < self.until

    def due(self, now: float) -> bool:
        """Is the neutral line owed to the next message?"""
        return now - self.told >= NOTICE_EVERY


def digest_of(vault: Vault, conv_id: str) -> str:
    return vault.digest("block:" + conv_id)


def key(digest: str) -> str:
    return KEY_PREFIX + digest


def opened(vault: Vault, digest: str, raw: bytes | None, now: float) -> Block | None:
    """The block a stored record holds, when it is in force at `now`."""
    if not raw:
        return None
    try:
        doc = vault.open(raw)
        block = Block(digest=digest, **{name: doc[name] for name in _FIELDS})
    except (InvalidToken, KeyError, TypeError, ValueError):
        return None  # not a record this version wrote: no block rather than an unanswerable texter
    return block if block.active(now) else None


_FIELDS = ("conv", "channel", "duration", "until", "by", "reason", "at", "told")


def _sealed(vault: Vault, block: Block) -> bytes:
    return vault.seal({name: value for name, value in asdict(block).items() if name in _FIELDS})


# -- the engine's side: a blocked sender's message ---------------------------------------------


def answer(flows: FlowEngine, vault: Vault, conv: Conversation, text: str, now: float,
           block: Block) -> tuple[Conversation, Step]:
    """(the conversation to save, what to answer) for a message from a blocked sender.

    The flow reads the message on a copy: what it does for danger or a keyword is kept (never a
    queue); anything else leaves the conversation where it was, and gets the neutral line when due.
    """
    trial = copy.deepcopy(conv)
    step = flows.step(trial, text, now)
    if any(e.name in KEPT_EFFECTS for e in step.effects) or KEPT_SAYINGS.intersection(step.keys):
        # A second emergency puts a texter in line (the flow's "told 911 already: a person"): not this one.
        trial.handoff, trial.counsellor = conv.handoff, conv.counsellor
        if flows.flow.states[trial.state].handoff:
            trial.state = conv.state
        kept = Step(level=step.level, matched=step.matched,
                    effects=[e for e in step.effects if e.name in KEPT_EFFECTS])
        for name in step.keys:
            if name in KEPT_SAYINGS:
                kept.keys.append(name)
                kept.replies.append(flows.say(trial, name))
        return trial, kept
    # What the flow learnt of the texter stays (the language to answer in, how risky it sounds).
    for name in ("lang", "messages", "created_at", "updated_at", "risk", "matched"):
        setattr(conv, name, getattr(trial, name))
    quiet = Step(level=step.level, matched=step.matched)
    if conv.opted_out:
        return conv, quiet  # never a word after STOP
    if _asks_help(flows, text):
        # HELP as a first message gets the welcome from the flow; the carrier's HELP answer is owed all the same.
        quiet.keys.append("help")
        quiet.replies.append(flows.say(conv, "help"))
    elif block.due(now):
        quiet.keys.append(NOTICE)
        quiet.replies.append(flows.say(conv, NOTICE))
        block.told = now
        quiet.effects.append(Effect("block_notice", {"key": block.key, "record": _sealed(vault, block)}))
    return conv, quiet


def _asks_help(flows: FlowEngine, text: str) -> bool:
    word = normalize(clean(text))
    return any(g.say == "help" and word in g.words for g in flows.flow.globals)


def noted(pipe, key: str, record: bytes) -> None:
    """Remember the neutral line was sent: only while the block stands (an unblock meanwhile wins)."""
    pipe.set(key, record, xx=True, keepttl=True)


# -- the console's side ----------------------------------------------------------------------------


def block(store: ConversationStore, waiting: WaitingQueue, conv_id: str, by: str, duration: str, reason: str,
          now: float) -> Block:
    """Block a conversation's sender; a conversation waiting in line leaves it. Audited (the duration;
    the reason stays sealed in the block record: the audit trail keeps no free text)."""
    if duration not in DURATIONS:
        raise BlockError("choose how long: 24 hours, 7 days or permanent")
    reason = " ".join((reason or "").split())
    if not reason:
        raise BlockError("give a reason, for the supervisor who reviews the block")
    if len(reason) > REASON_MAX:
        raise BlockError(f"a reason can be at most {REASON_MAX} characters")
    vault = store.vault
    session = store.begin(conv_id)
    try:
        conv = session.conv
        if conv is None:
            raise BlockError("this conversation no longer exists")
        if conv.handoff == "active":
            # The texter would get the neutral line in the middle of a counsellor's conversation.
            raise BlockError(f"{conv.counsellor or 'a counselor'} holds this conversation: end it first, then block")
        seconds = DURATIONS[duration]
        found = Block(digest_of(vault, conv_id), conv_id, conv.channel, duration,
                      None if seconds is None else now + seconds, by, reason, now)
        left = conv.handoff == "waiting"
        if left:
            conv.handoff = None
            for slot in ("queued_at", "reason"):
                conv.slots.pop(slot, None)

        def also(pipe) -> None:
            pipe.set(found.key, _sealed(vault, found), ex=seconds)
            pipe.zadd(INDEX, {found.digest: math.inf if found.until is None else found.until})
            # Whatever of it waits in line goes: a handoff, or a tip (which waits without one).
            waiting.remove(pipe, conv_id)
            events.publish(pipe, "left", conv_id)
            audit.record(pipe, by, "block", conv_id, duration)
    except BaseException:
        store.release(session)
        raise
    store.commit(session, conv, also=also)
    return found


def unblock(client: redis.Redis, vault: Vault, digest: str, by: str, now: float) -> Block:
    """Lift a block now; audited."""
    found = opened(vault, digest, client.get(key(digest)), now)
    if found is None:
        raise BlockError("this sender is not blocked (any more)")
    pipe = client.pipeline(transaction=True)
    pipe.delete(found.key)
    pipe.zrem(INDEX, digest)
    audit.record(pipe, by, "unblock", found.conv, found.duration)
    pipe.execute()
    return found


def of_conversation(client: redis.Redis, vault: Vault, conv_id: str, now: float) -> Block | None:
    digest = digest_of(vault, conv_id)
    return opened(vault, digest, client.get(key(digest)), now)


def listed(client: redis.Redis, vault: Vault, now: float) -> list[Block]:
    """Blocks in force, the soonest to end first (permanent ones last)."""
    client.zremrangebyscore(INDEX, "-inf", now)  # ended: Redis dropped their records already
    digests = [d.decode() for d in client.zrange(INDEX, 0, LISTED_MAX - 1)]
    raws = client.mget([key(d) for d in digests]) if digests else []
    return [b for b in (opened(vault, d, raw, now) for d, raw in zip(digests, raws)) if b is not None]
