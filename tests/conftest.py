"""What many test modules share: the project root, polling for a condition, and a fixture
that points an example service at a fresh bundled upstream."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the project root
