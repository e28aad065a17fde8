"""Live updates for the console and the chat page, over Redis pub/sub. Events carry ids, never content."""
from __future__ import annotations

import json
import time

CONSOLE = "ev:console"


def conversation_channel(conv_id: str) -> str:
    return f"ev:c:{conv_id}"


def publish(pipe, kind: str, conv_id: str, **data) -> None:
    """Tell the console (and anyone watching this conversation) that something happened."""
    message = json.dumps({"kind": kind, "conv": conv_id, "at": time.time(), **data})
    pipe.publish(CONSOLE, message)
    pipe.publish(conversation_channel(conv_id), message)
