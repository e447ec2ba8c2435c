"""`from openai import OpenAI` is the SDK even with app/openai.py beside it."""

from openai import OpenAI

client = OpenAI()


async def still_the_sdk() -> None:
    client.chat.completions.create(model="m", messages=[])  # expect: OA102
