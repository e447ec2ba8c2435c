"""A small sample project with the whole family of mistakes, for running the doctor on.

Notebook 09 writes it to a temporary directory and runs ``python -m support.doctor``
there, as a user would on their own project. It has one of each mistake the rules catch
(a per-request client, a sync call in ``async def``, a forgotten ``await``, a module-level
``AsyncOpenAI`` nobody closes, a sync stream served by ``StreamingResponse``, an ``await``
on the sync client and ``asyncio.run`` in notebook cells) and code that looks similar and
is fine (the ``/fine`` route: a bound method handed to ``asyncio.to_thread``, a local
``client`` that is an ``httpx.AsyncClient``), which must stay unflagged.

The code is kept in strings: as real modules of this package, the doctor and the linters
would report them here.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

__all__ = ["NOTEBOOK_CELLS", "SERVICE_MAIN", "write_sample_project"]

# service/main.py. Line numbers matter: notebook 09 checks that nothing from line 36 on
# (the /fine route) is flagged.
SERVICE_MAIN = """\
import asyncio

import httpx
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from openai import AsyncOpenAI, OpenAI

app = FastAPI()
llm = AsyncOpenAI()
sync_llm = OpenAI()


@app.post("/summary")
async def summary(text: str) -> str:
    client = OpenAI()
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}])
    return completion.choices[0].message.content or ""


@app.post("/title")
async def title(text: str) -> str:
    completion = llm.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}])
    return completion.choices[0].message.content or ""


def tokens(prompt: str):
    for chunk in sync_llm.chat.completions.create(model="gpt-4o-mini", messages=[], stream=True):
        yield chunk.choices[0].delta.content or ""


@app.get("/stream")
def stream(prompt: str) -> StreamingResponse:
    return StreamingResponse(tokens(prompt), media_type="text/plain")


@app.post("/fine")
async def fine(text: str) -> str:
    completion = await asyncio.to_thread(sync_llm.chat.completions.create, model="gpt-4o-mini", messages=[])
    client = httpx.AsyncClient()
    await client.post("https://example.com/audit", json={"text": text})
    return completion.choices[0].message.content or ""
"""

# analysis.ipynb: its code cells (IPython's ``%load_ext`` line is skipped by the doctor).
NOTEBOOK_CELLS = [
    "%load_ext autoreload\nimport asyncio\nfrom openai import OpenAI\nclient = OpenAI()",
    "async def main():\n    return await client.chat.completions.create(model='gpt-4o-mini', messages=[])",
    "reply = asyncio.run(main())",
]


def _notebook(cells: list[str]) -> str:
    """A minimal nbformat 4 notebook with `cells` as code cells (no nbformat needed)."""
    return json.dumps(
        {
            "cells": [
                {
                    "cell_type": "code",
                    "execution_count": None,
                    "id": f"cell-{i}",
                    "metadata": {},
                    "outputs": [],
                    "source": source,
                }
                for i, source in enumerate(cells, 1)
            ],
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
            "nbformat": 4,
            "nbformat_minor": 5,
        },
        indent=1,
    )


def write_sample_project(root: Path | None = None) -> Path:
    """Write ``service/main.py`` and ``analysis.ipynb`` under `root` (default: a new temporary
    directory, which the caller removes) and return the project's directory."""
    project = Path(tempfile.mkdtemp(prefix="doctor-sample-")) if root is None else root
    (project / "service").mkdir(parents=True, exist_ok=True)
    (project / "service" / "main.py").write_text(SERVICE_MAIN)
    (project / "analysis.ipynb").write_text(_notebook(NOTEBOOK_CELLS))
    return project
