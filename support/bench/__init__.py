"""``python -m support.bench``: every pattern's service under the same load, with plots.

Each service runs in its own uvicorn process (uvloop and httptools), instrumented by
`instrument` to report its event-loop lag and peak memory; the bundled upstream runs in
another, and the load generator in this one. See `run` for the procedure and `report`
for what is written.
"""
