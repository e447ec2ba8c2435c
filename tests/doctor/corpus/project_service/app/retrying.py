"""A retry policy defined once and imported where it is used."""

from tenacity import retry, stop_after_attempt

llm_retry = retry(stop=stop_after_attempt(3))
