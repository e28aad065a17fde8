"""RQ jobs and the worker entry point. Jobs take ids and plain values, never a number or a message."""
