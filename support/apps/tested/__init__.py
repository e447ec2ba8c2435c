"""An example service and the test suite a reader copies: testing FastAPI + OpenAI without a network.

``service`` is a small summarizer (``POST /summarize``) with an ``AsyncOpenAI`` made in
its lifespan, a ``get_client`` dependency, and SDK errors mapped to documented statuses.
``suite/`` tests it five ways, one file per approach; ``pitfalls/`` holds the async test
layouts that fail with "Event loop is closed" (run on purpose, never collected with the
suite). ``pytest.ini`` is the suite's own configuration, as in the reader's project.
Notebook 13 runs them all, and seeds bugs into a copy of ``service`` to see which
approach catches which (`support.seeded_bugs`).
"""
