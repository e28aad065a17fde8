"""One exception hierarchy for the help line; Redis and Twilio errors are mapped to it at the edges."""

import traceback


class HelplineError(Exception):
    """Base class for every error the help line raises on purpose."""


class ConfigurationError(HelplineError):
    """The settings are missing something the help line cannot run without."""


class StoreUnavailable(HelplineError):
    """Redis could not be reached or answered with an error."""


class ConversationBusy(HelplineError):
    """Another process held the conversation lock for longer than we can wait."""


class Throttled(HelplineError):
    """A sender passed their rate limit; the message was not processed."""


class ConversationGone(HelplineError):
    """A message for a conversation that no longer exists, on a channel that may not start one
    (a chat's message racing its own quick exit)."""


class BadInbound(HelplineError):
    """An inbound request lacks a field the channel cannot do without."""


class SendFailed(HelplineError):
    """An outbound message could not be handed to the carrier."""


class RecipientOptedOut(SendFailed):
    """The recipient has opted out (STOP); nothing may be sent to them."""


class NoConsent(SendFailed):
    """The texter has not agreed to be texted first at this number."""


def origin(exc: BaseException) -> str:
    """Where an exception was raised ("zipcodes/__init__.py:42"): enough to find a bug from the log,
    without the exception's message, which may quote what a texter wrote."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "?"
    path = frames[-1].filename.replace("\\", "/").split("/")
    return f"{'/'.join(path[-2:])}:{frames[-1].lineno}"
