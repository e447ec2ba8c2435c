"""Known misses: real bugs the doctor does not flag, by design (precision first).

Each `# known-miss: CODE` line is a true problem the static rules cannot prove from this
module alone; the evaluation counts them against recall, and the tests assert they stay
unflagged (so a change that starts flagging them is noticed and the marker updated).
"""

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from openai import OpenAI

app = FastAPI()


def make_client():  # no return annotation, but every return is an OpenAI(): a sync client
    return OpenAI()  # expect: OA104


@app.post("/a")
async def a(request: Request) -> None:
    # app.state.llm is assigned in another module: unknown here
    request.app.state.llm.chat.completions.create(model="m", messages=[])  # known-miss: OA102


@app.post("/b")
async def b(client) -> None:  # unannotated parameter
    client.chat.completions.create(model="m", messages=[])  # known-miss: OA102


@app.post("/c")
async def c() -> None:
    make_client().chat.completions.create(model="m", messages=[])  # expect: OA102


def gen(stream_flag: bool):
    client = OpenAI()  # expect: OA104
    for chunk in client.chat.completions.create(model="m", messages=[], stream=stream_flag):  # known-miss: OA107
        yield chunk


@app.get("/d")
def d() -> StreamingResponse:
    return StreamingResponse(gen(True))
