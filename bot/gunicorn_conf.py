"""Settings for every gunicorn the help line starts (`--config python:bot.gunicorn_conf` in the
Procfile, `helpline run` and the benchmark); the command lines add workers, threads and the bind."""

# Seconds an idle keep-alive connection stays open. The side that closes an idle connection must be
# the client (a load balancer, a proxy), never the app: if the app closes it just as the client sends
# the next webhook on it, the client gets no answer at all and the texter is not answered
# (tests/ops/test_many_processes.py saw this with gunicorn's 2-second default). Longer than the
# idle timeout of the usual load balancers (60 s); with threaded workers an idle connection holds
# no thread.
keepalive = 75

# Seconds a stopping worker waits for requests in flight. A webhook takes milliseconds; what can
# last is a live stream (up to a minute), and its browser reconnects to another process by itself,
# so a restart or deploy need not wait gunicorn's default 30 s for each.
graceful_timeout = 10
