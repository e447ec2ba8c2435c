"""Deploying a service: uvicorn ``--workers N`` and gunicorn with uvicorn workers, for real.

Notebook 14 starts the template (``support/apps/hardened``) and a few small services
that show a deployment pitfall each, as the processes production runs: a master and N
workers on a loopback port, stopped with signals. What it measures lives here:

- `servers`: start uvicorn or gunicorn as a child process, wait until every worker
  answers, list the workers, stop with a signal and time the exit, always reap;
- `memory`: each process's memory (USS and PSS), as a table;
- `preload`: a sync client that checked its key at import, under ``--preload``, and the fixes;
- `blocking`: a route that blocks its loop against one that awaits (gunicorn's worker timeout);
- `journal`: what the upstream's journal says about the processes (connections, calls in flight).
"""
