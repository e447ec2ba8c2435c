"""The real-code corpus: files from public projects, kept as a manifest, never as copies.

The hand-written corpus (``tests/doctor/corpus``) was written alongside the rules, so it
agrees with them by construction. This one measures them: whole files from distinct
public repositories that call the OpenAI SDK from async services, each labelled by
reading it *before* the checker ran. Other projects' code is not copied into this one,
so a manifest (``tests/doctor/realcode/*.toml``) pins each file by repository, path and
commit with its expected findings and the reason for each, and the files themselves
live in a local cache, filled once with ``--fetch`` (needs the internet), which downloads
each repository at its commit: the checker reads each file inside its own project, so
names it imports from the repository's other modules resolve (`support.doctor.project`)::

    python -m support.doctor.evaluate --manifest tests/doctor/realcode --cache build/realcode --fetch

Standard library only, like the rest of the doctor.
"""

from __future__ import annotations

import io
import re
import tarfile
import tomllib
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

__all__ = ["Expected", "ManifestError", "RealFile", "fetch_missing", "load_manifests"]

ARCHIVE_BASE = "https://codeload.github.com"  # serves <owner>/<name>/tar.gz/<commit>
# What the cache keeps of a repository: its Python files (the checker resolves imports
# across them) and the files that say how it is packaged.
KEPT = re.compile(r"(\.py|(^|/)(pyproject\.toml|setup\.py|setup\.cfg|requirements[^/]*\.txt))$")
COMPLETE = ".complete"  # written in a repository's cache folder once its archive is extracted
KINDS = frozenset({"fastapi", "starlette", "other-async"})
_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_CODE = re.compile(r"^OA1\d\d$")


class ManifestError(ValueError):
    """A manifest entry that cannot be used as it is; the message names the file and entry."""


@dataclass(frozen=True)
class Expected:
    """A finding the labeller expects: the 1-based line of the call it is about, and why."""

    line: int
    code: str
    reason: str


@dataclass(frozen=True)
class RealFile:
    repo: str
    path: str
    commit: str
    kind: str
    findings: tuple[Expected, ...]
    notes: str = ""

    @property
    def key(self) -> str:
        """How the file is named in an evaluation: ``owner/name/path``."""
        return f"{self.repo}/{self.path}"

    def cache_root(self, cache: Path) -> Path:
        """The folder holding the repository's files at the commit: the file's project."""
        owner, name = self.repo.split("/")
        return cache / f"{owner}+{name}" / self.commit

    def cache_path(self, cache: Path) -> Path:
        return self.cache_root(cache) / self.path

    def url(self, base: str = ARCHIVE_BASE) -> str:
        """Where ``--fetch`` downloads the repository from: an archive of that commit."""
        return f"{base}/{self.repo}/tar.gz/{self.commit}"


def load_manifests(folder: Path) -> list[RealFile]:
    """Every ``[[file]]`` of every ``*.toml`` in `folder`, validated; one file per repository."""
    files: list[RealFile] = []
    seen: dict[str, str] = {}
    manifests = sorted(folder.glob("*.toml"))
    if not manifests:
        raise ManifestError(f"{folder}: no *.toml manifest")
    for manifest in manifests:
        try:
            data = tomllib.loads(manifest.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ManifestError(f"{manifest}: not valid TOML: {exc}") from None
        for index, entry in enumerate(data.get("file", []), start=1):
            real = _entry(entry, f"{manifest.name}, file #{index}")
            if real.repo in seen:
                raise ManifestError(f"{manifest.name}, file #{index}: {real.repo} is already in {seen[real.repo]}")
            seen[real.repo] = manifest.name
            files.append(real)
    return files


def _entry(entry: object, where: str) -> RealFile:
    if not isinstance(entry, dict):
        raise ManifestError(f"{where}: expected a table")
    missing = {"repo", "path", "commit", "kind", "findings"} - entry.keys()
    if missing:
        raise ManifestError(f"{where}: missing {', '.join(sorted(missing))}")
    repo, path, commit, kind = (entry[k] for k in ("repo", "path", "commit", "kind"))
    if not isinstance(repo, str) or not _REPO.match(repo):
        raise ManifestError(f"{where}: repo must be owner/name, got {repo!r}")
    pure = PurePosixPath(str(path))
    if not isinstance(path, str) or pure.is_absolute() or ".." in pure.parts or not path.endswith(".py"):
        raise ManifestError(f"{where}: path must be a relative .py path inside the repository, got {path!r}")
    if not isinstance(commit, str) or not _COMMIT.match(commit):
        raise ManifestError(f"{where}: commit must be 40 lowercase hex digits, got {commit!r}")
    if kind not in KINDS:
        raise ManifestError(f"{where}: kind must be one of {', '.join(sorted(KINDS))}, got {kind!r}")
    findings = []
    for item in entry["findings"]:
        line, code, reason = (item.get(k) if isinstance(item, dict) else None for k in ("line", "code", "reason"))
        if not (isinstance(line, int) and line >= 1 and isinstance(code, str) and _CODE.match(code)):
            raise ManifestError(f"{where}: a finding needs line >= 1 and code OA1xx, got {item!r}")
        if not isinstance(reason, str) or not reason.strip():
            raise ManifestError(f"{where}: the finding at line {line} has no reason")
        findings.append(Expected(line, code, reason))
    notes = entry.get("notes", "")
    return RealFile(repo, path, commit, kind, tuple(findings), notes if isinstance(notes, str) else "")


def fetch_missing(
    files: list[RealFile], cache: Path, *, base: str = ARCHIVE_BASE, timeout_s: float = 60.0
) -> list[str]:
    """Download the repositories the cache lacks, each at its commit (the checker reads the
    file inside its repository), keeping the `KEPT` files; one error line per failure."""
    errors = []
    for real in files:
        root = real.cache_root(cache)
        if (root / COMPLETE).is_file():
            continue
        try:
            with urllib.request.urlopen(real.url(base), timeout=timeout_s) as response:
                archive = response.read()
            _extract(archive, root)
        except (OSError, tarfile.TarError) as exc:
            errors.append(f"{real.key}@{real.commit[:12]}: cannot fetch: {exc}")
            continue
        if not real.cache_path(cache).is_file():
            errors.append(f"{real.key}@{real.commit[:12]}: the archive has no {real.path}")
            continue
        (root / COMPLETE).write_text(real.url(base) + "\n", encoding="utf-8")
    return errors


def _extract(archive: bytes, root: Path) -> None:
    """The `KEPT` regular files of a ``<name>-<commit>/...`` tar.gz, written under `root`;
    a member with an absolute path or ``..`` is refused (the archive comes from outside)."""
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        for member in tar.getmembers():
            inner = PurePosixPath(*PurePosixPath(member.name).parts[1:])  # drop <name>-<commit>/
            if not member.isfile() or not KEPT.search(str(inner)):
                continue
            if PurePosixPath(member.name).is_absolute() or ".." in inner.parts:
                raise tarfile.TarError(f"unsafe path in the archive: {member.name}")
            source = tar.extractfile(member)
            if source is None:
                continue
            target = root.joinpath(*inner.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read())
