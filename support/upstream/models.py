"""What the real API does differently per model family, as far as the upstream emulates it.

- Reasoning models (o1, o3, o4-mini, gpt-5 and later, but not the ``-chat`` variants)
  think before they answer: their replies carry reasoning tokens (``effort`` medium by
  default), which count against ``max_completion_tokens``/``max_output_tokens`` (so a
  small limit can leave an empty answer, as it does for real). They refuse
  ``max_tokens`` (use ``max_completion_tokens``) and a non-default ``temperature`` or
  ``top_p``, with the real API's messages.
- Classic chat models (gpt-4o, gpt-4.1, gpt-4, gpt-3.5, chatgpt-4o) refuse
  ``reasoning_effort`` / ``reasoning.effort``.
- Any other name (a fine-tune of unknown lineage, a name made up for a notebook) is
  served leniently: no reasoning unless an effort is asked for, and nothing refused.
"""

from __future__ import annotations

import re
from typing import Literal

Family = Literal["reasoning", "classic", "other"]

EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
DEFAULT_EFFORT = "medium"
# Hidden tokens a reply spends thinking, per effort: enough to show up in usage and to
# exhaust a small token limit, small enough to keep streams short.
REASONING_TOKENS = {"none": 0, "minimal": 4, "low": 16, "medium": 32, "high": 64, "xhigh": 96, "max": 128}

_REASONING = re.compile(r"^(o\d|gpt-5|gpt-6|codex)")
_CLASSIC = re.compile(r"^(gpt-4|gpt-3\.5|chatgpt)")


def family(model: str) -> Family:
    """The family of `model`, looking through a fine-tune's ``ft:`` prefix to its base."""
    base = model.removeprefix("ft:")
    if _REASONING.match(base) and "-chat" not in base:
        return "reasoning"
    if _CLASSIC.match(base) or "-chat" in base:
        return "classic"
    return "other"


def effective_effort(model: str, asked: str | None) -> str | None:
    """The reasoning effort a reply is made with: None when the model does not reason."""
    if asked is not None:
        return None if asked == "none" else asked
    return DEFAULT_EFFORT if family(model) == "reasoning" else None
