"""The words the bundled upstream's 'model' speaks: every reply is made of these sentences."""

from __future__ import annotations

SENTENCES = (
    "An awaited call lets the event loop serve other requests while this one waits.",
    "A blocking call holds the whole loop until the network answers.",
    "One client per process keeps its connection pool warm.",
    "Threads help a sync client, but every pool has a size.",
    "Streams should stop when the reader goes away.",
    "Retries belong in one layer, with a deadline above them.",
    "Latency is measured, not guessed.",
    "The upstream answered after the configured delay.",
)

# Distinct bare words (no punctuation), for strings inside structured output and for the
# alternatives of top_logprobs.
WORDS = tuple(sorted({word.strip(".,").lower() for sentence in SENTENCES for word in sentence.split()}))
