"""support.doctor.realcode and ``evaluate --manifest``: manifests, the cache, fetching, scoring.

The files here are written by the test (our own snippets), so nothing of another project
is needed; `test_the_committed_real_code_corpus` checks the project's manifests, and
`test_the_recorded_real_code_results` re-scores them where the cache is present.
"""

from __future__ import annotations

import functools
import http.server
import io
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.doctor.evaluate import checker_digest, evaluate_real, load_record, main
from support.doctor.realcode import ManifestError, RealFile, fetch_missing, load_manifests
from tests.conftest import ROOT

COMMIT = "0123456789abcdef0123456789abcdef01234567"
REALCODE = ROOT / "tests" / "doctor" / "realcode"

BLOCKING = """from fastapi import FastAPI
from openai import OpenAI

app = FastAPI()
client = OpenAI()


@app.post("/chat")
async def chat(prompt: str) -> str:
    reply = client.chat.completions.create(model="m", messages=[{"role": "user", "content": prompt}])
    return reply.choices[0].message.content or ""
"""


def manifest(folder: Path, body: str, name: str = "m.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(body)
    return folder


def entry(repo: str = "someone/service", line: int = 10, code: str = "OA102", **override: str) -> str:
    fields = {"repo": repo, "path": "app/main.py", "commit": COMMIT, "kind": "fastapi", **override}
    head = "\n".join(f'{k} = "{v}"' for k, v in fields.items())
    return f'[[file]]\n{head}\nfindings = [{{ line = {line}, code = "{code}", reason = "sync call in async def" }}]\n'


def cached(cache: Path, real: RealFile, text: str) -> None:
    target = real.cache_path(cache)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def test_a_manifest_entry_is_read_and_scored_from_the_cache(tmp_path: Path) -> None:
    files = load_manifests(manifest(tmp_path / "m", entry()))
    assert [(f.key, f.findings[0].line, f.findings[0].code) for f in files] == [
        ("someone/service/app/main.py", 10, "OA102")
    ]
    cached(tmp_path / "cache", files[0], BLOCKING)
    result = evaluate_real(files, tmp_path / "cache")
    assert (result.files, result.missed, result.spurious_findings, result.errors) == (1, set(), set(), [])


def test_a_wrong_label_counts_as_a_miss_and_a_false_positive(tmp_path: Path) -> None:
    files = load_manifests(manifest(tmp_path / "m", entry(line=9)))  # the def line, not the call
    cached(tmp_path / "cache", files[0], BLOCKING)
    result = evaluate_real(files, tmp_path / "cache")
    assert result.missed == {("someone/service/app/main.py", 9, "OA102")}
    assert result.spurious_findings == {("someone/service/app/main.py", 10, "OA102")}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (entry(repo="not-a-repo"), "repo must be owner/name"),
        (entry(commit="abc"), "commit must be 40 lowercase hex"),
        (entry(path="../escape.py"), "relative .py path"),
        (entry(kind="flask"), "kind must be one of"),
        (entry(code="E501"), "code OA1xx"),
        ('[[file]]\nrepo = "a/b"\n', "missing"),
        (entry() + entry(), "already in"),
        ("[[file]\n", "not valid TOML"),
        (entry().replace("sync call in async def", " "), "has no reason"),
    ],
)
def test_a_bad_manifest_is_refused_naming_the_entry(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        load_manifests(manifest(tmp_path / "m", body))


def test_the_cli_names_a_file_missing_from_the_cache_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = manifest(tmp_path / "m", entry())
    assert main(["--manifest", str(folder), "--cache", str(tmp_path / "empty")]) == 1
    out = capsys.readouterr().out
    assert "1 files listed, 0 checked" in out
    assert f"error: someone/service/app/main.py@{COMMIT[:12]}: not in the cache" in out
    assert "missed: someone/service/app/main.py:10: OA102" in out


def test_the_cli_refuses_both_or_neither_corpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in ([], [str(tmp_path), "--manifest", str(tmp_path)]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
    assert "give either CORPUS_DIR or --manifest DIR" in capsys.readouterr().err


@pytest.fixture
def raw_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A loopback stand-in for the raw-file host: serves <owner>/<name>/<commit>/<path>."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


def _archive(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_fetch_fills_the_cache_with_the_repository_and_names_what_it_could_not_get(
    raw_server: tuple[str, Path], tmp_path: Path
) -> None:
    base, served = raw_server
    files = load_manifests(
        manifest(tmp_path / "m", entry() + entry(repo="other/gone") + entry(repo="evil/tar") + entry(repo="no/file"))
    )
    archives = {
        "someone/service": {
            f"service-{COMMIT}/app/main.py": BLOCKING.encode(),
            f"service-{COMMIT}/app/clients.py": b"client = 1\n",
            f"service-{COMMIT}/pyproject.toml": b"[project]\n",
            f"service-{COMMIT}/docs/logo.png": b"\x89PNG",
        },
        "evil/tar": {f"tar-{COMMIT}/../../escape.py": b"x = 1\n"},
        "no/file": {f"file-{COMMIT}/other.py": b"x = 1\n"},
    }
    for repo, members in archives.items():
        (served / repo / "tar.gz").mkdir(parents=True)
        (served / repo / "tar.gz" / COMMIT).write_bytes(_archive(members))
    cache = tmp_path / "cache"
    errors = fetch_missing(files, cache, base=base, timeout_s=5)
    root = files[0].cache_root(cache)
    assert files[0].cache_path(cache).read_text() == BLOCKING
    assert (root / "app" / "clients.py").is_file() and (root / "pyproject.toml").is_file()
    assert not (root / "docs").exists()  # only Python and packaging files are kept
    assert not (tmp_path / "escape.py").exists() and not (cache / "escape.py").exists()
    assert [e.split(": ", 1)[0] for e in errors] == [
        f"other/gone/app/main.py@{COMMIT[:12]}",
        f"evil/tar/app/main.py@{COMMIT[:12]}",
        f"no/file/app/main.py@{COMMIT[:12]}",
    ]
    assert "cannot fetch" in errors[0] and "unsafe path" in errors[1] and "has no app/main.py" in errors[2]
    assert fetch_missing(files[:1], cache, base="http://127.0.0.1:9", timeout_s=5) == []  # complete: not fetched again


def test_the_committed_real_code_corpus() -> None:
    """The measure the issue asks for: 40+ whole files from distinct projects, about half
    with a defect, every expected finding with a reason (load_manifests checks each)."""
    files = load_manifests(REALCODE)
    assert len(files) >= 40 and len({f.repo for f in files}) == len(files)
    defective = sum(1 for f in files if f.findings)
    assert 0.3 <= defective / len(files) <= 0.7, (defective, len(files))


def test_a_record_round_trips_and_carries_the_checkers_digest(tmp_path: Path) -> None:
    folder = manifest(tmp_path / "m", entry())
    files = load_manifests(folder)
    cached(tmp_path / "cache", files[0], BLOCKING)
    out = tmp_path / "results.json"
    assert main(["--manifest", str(folder), "--cache", str(tmp_path / "cache"), "--record", str(out)]) == 0
    again, digest = load_record(out)
    assert digest == checker_digest(folder)
    key = ("someone/service/app/main.py", 10, "OA102")
    assert (again.files, again.expected, again.found) == (1, {key}, {key})
    (folder / "m.toml").write_text(entry(line=9))  # a label changed: the record no longer describes it
    assert checker_digest(folder) != digest


def test_the_recorded_real_code_results_are_current() -> None:
    """CI has no copy of the real files, so it cannot re-score them; it can fail when the
    checker or the labels changed since the recorded result was measured."""
    _, digest = load_record(REALCODE / "results.json")
    assert digest == checker_digest(REALCODE), (
        "the checker or the manifests changed since tests/doctor/realcode/results.json was recorded: "
        "python -m support.doctor.evaluate --manifest tests/doctor/realcode --cache build/realcode --fetch "
        "--record tests/doctor/realcode/results.json"
    )


def test_the_recorded_real_code_results_match_a_live_run_where_the_files_are_cached() -> None:
    cache = ROOT / "build" / "realcode"  # the evaluate command's default cache
    files = load_manifests(REALCODE)
    if not all(f.cache_path(cache).is_file() for f in files):
        pytest.skip("the real-code files are not cached on this machine (fetch them with --fetch)")
    live = evaluate_real(files, cache)
    recorded, _ = load_record(REALCODE / "results.json")
    assert (live.expected, live.found, live.files) == (recorded.expected, recorded.found, recorded.files)
