"""Support package behind the runbook notebooks.

`support.upstream` is the bundled OpenAI-compatible server, `support.serve` runs any
ASGI app on a real socket inside a kernel, a thread or a test, and `support.nbrun`
executes notebooks with parameters.
"""
