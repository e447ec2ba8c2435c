"""Helpers main.py runs (not routes): each builds a client per call."""

from openai import OpenAI


def describe(text: str) -> str:
    client = OpenAI(timeout=None)  # expect: OA104, OA110
    completion = client.chat.completions.create(model="m", messages=[{"role": "user", "content": text}])
    return completion.choices[0].message.content or ""


def never_called() -> None:
    # the same shape, but nothing in the project calls it: no client is ever built
    client = OpenAI()
    client.models.list()
