"""A project module that happens to be named like the SDK: `from openai import ...` elsewhere is still the SDK."""


class OpenAI:  # not the SDK's client
    def __init__(self) -> None:
        self.chat = None
