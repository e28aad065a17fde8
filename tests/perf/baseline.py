"""The bare baseline the help line is measured against: what any Twilio webhook must do, and no more.

It checks the signature, makes one pipelined Redis round trip and answers a one-line TwiML, under
the same gunicorn settings as the help line (`gunicorn 'tests.perf.baseline:create_app()'`).
"""
from __future__ import annotations

import os

import redis
from flask import Flask, Response, abort, request
from twilio.request_validator import RequestValidator

TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Message>Thanks, we got your message.</Message></Response>'


def create_app() -> Flask:
    app = Flask(__name__)
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    validator = RequestValidator(os.environ["TWILIO_AUTH_TOKEN"])
    url = os.environ["PUBLIC_URL"].rstrip("/") + "/sms"

    @app.post("/sms")
    def sms():
        if not validator.validate(url, request.form, request.headers.get("X-Twilio-Signature", "")):
            abort(403)
        pipe = client.pipeline(transaction=False)
        pipe.incr("baseline:messages")
        pipe.get("baseline:conversation")
        pipe.execute()
        return Response(TWIML, mimetype="text/xml")

    return app
