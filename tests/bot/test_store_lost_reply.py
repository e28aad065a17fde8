"""A message's first round trip whose reply is lost after Redis ran it: the lock it took is its own.

ConversationStore.begin tries a call again once when the connection fails. If the script had already
run (the connection closed on the way back), the lock it took is held under the same token, and the
retry must recognise it at once rather than wait for it to expire as if another process held it."""
from __future__ import annotations

import pytest
import redis
from cryptography.fernet import Fernet

from bot.crypto import Vault
from bot.store import ConversationStore, lock_key
from tests.privacy.redis_faults import CuttingProxy
from tests.privacy.test_faults import tcp_redis  # noqa: F401 (a fixture)


@pytest.mark.parametrize("message_id", ["SM1", None], ids=["a texter's message", "the console or a worker"])
def test_a_retry_after_a_lost_reply_holds_the_lock_its_first_try_took(tcp_redis, message_id):
    _, port = tcp_redis
    redis_client = redis.Redis(port=port)
    proxy = CuttingProxy(port)
    try:
        client = redis.Redis(port=proxy.port, socket_timeout=2)
        # Waiting less than the lock lives: a retry that did not know its own lock would give up.
        store = ConversationStore(client, Vault(Fernet.generate_key().decode(), "hash-key"), lock_wait=0.5)
        store.begin("warm-up", "SMwarm")  # the connection made and the scripts loaded before the fault
        redis_client.delete(lock_key("warm-up"))

        # The first try's script runs in Redis; its reply never comes back.
        proxy.arm("after", times=1, command=b"EVALSHA")
        session = store.begin("lost-reply", message_id)

        assert proxy.cuts == 1
        assert redis_client.get(lock_key("lost-reply")).decode() == session.token
        store.release(session)
        assert redis_client.get(lock_key("lost-reply")) is None
    finally:
        proxy.close()
        redis_client.close()
