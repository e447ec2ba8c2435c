"""Async test layouts that break with pytest-asyncio 1.x: run on purpose, never with the suite (notebook 13)."""
