"""Real shapes: the SDK imported optionally (``OpenAI = None`` when it is missing)."""

try:
    from openai import AsyncOpenAI, OpenAI
except ImportError:  # the SDK is optional here
    AsyncOpenAI = None
    OpenAI = None

try:
    import openai
except ImportError:
    openai = None

client = OpenAI() if OpenAI is not None else None


async def blocks() -> None:
    client.chat.completions.create(model="m", messages=[])  # expect: OA102


async def forgets_await() -> None:
    AsyncOpenAI().chat.completions.create(model="m", messages=[])  # expect: OA103


async def module_client() -> None:
    openai.chat.completions.create(model="m", messages=[])  # expect: OA102


# --- negatives: a fallback that is something else ---------------------------------------

try:
    from openai import AsyncOpenAI as Backend
except ImportError:
    from httpx import AsyncClient as Backend


async def fallback() -> None:
    await Backend().chat.completions.create(model="m", messages=[])
