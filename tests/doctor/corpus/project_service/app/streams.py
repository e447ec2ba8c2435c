"""Stream helpers: main.py serves what `answer_stream` returns with a StreamingResponse."""

from collections.abc import Iterator

from .clients import sync_client


def answer_stream(question: str) -> Iterator[str]:
    stream = sync_client.chat.completions.create(model="m", messages=[], stream=True)

    def chunks() -> Iterator[str]:
        for chunk in stream:  # expect: OA107
            yield chunk.choices[0].delta.content or ""

    return chunks()


def export_lines(question: str) -> Iterator[str]:
    # not served by a StreamingResponse anywhere: a CLI may read it to the end
    stream = sync_client.chat.completions.create(model="m", messages=[], stream=True)

    def chunks() -> Iterator[str]:
        for chunk in stream:
            yield chunk.choices[0].delta.content or ""

    return chunks()
