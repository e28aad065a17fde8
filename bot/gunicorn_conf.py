"""Settings for every gunicorn the help line starts (`--config python:bot.gunicorn_conf` in the
Procfile, `helpline run` and the benchmark).

Memory: a help-line worker holds some 90,000 long-lived objects (the flow and its `transitions`
machine, both catalogs, the triage lexicon, the resource directory) that never become garbage,
and a message allocates a few thousand short-lived ones. With Python's default thresholds the
cyclic collector runs several times per message and now and then walks the whole heap. Frozen,
the startup objects are left out of every collection, and a higher first threshold lets the
collector run once per several messages. `make bench` measured about 5 % less CPU per message;
the baseline it is compared with runs under these settings too.
"""
import gc

# Seconds an idle keep-alive connection stays open. The side that closes an idle connection must be
# the client (a load balancer, a proxy), never the app: if the app closes it just as the client sends
# the next webhook on it, the client gets no answer at all and the texter is not answered
# (tests/ops/test_many_processes.py saw this with gunicorn's 2-second default). Longer than the
# idle timeout of the usual load balancers (60 s); with threaded workers an idle connection holds
# no thread.
keepalive = 75

GC_THRESHOLD = (20_000, 10, 10)  # Python's default is (700, 10, 10)


def post_worker_init(worker):
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
