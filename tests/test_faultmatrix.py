"""support.faultmatrix: the error object an observation carries, and the matrix as a table."""

from __future__ import annotations

from support.faultmatrix import MATRIX, FaultCase, Observation, format_observations

ERROR = {"message": "m", "type": "upstream_error", "param": None, "code": "rate_limited", "request_id": "r"}


def test_error_comes_from_the_json_body() -> None:
    case = FaultCase("rate_limit", 429, "rate_limited", 3)
    observation = Observation(case, 429, "rate_limited", 3, 0.4, body={"error": ERROR})
    assert observation.error == ERROR and observation.holds


def test_error_comes_from_a_stream_s_last_error_event() -> None:
    case = FaultCase("stream_error;after=2", 200, "upstream_stream_error", 1, stream=True)
    events = [("message", {"delta": "a"}), ("error", {"error": {"code": "first"}}), ("error", {"error": ERROR})]
    assert Observation(case, 200, "upstream_stream_error", 1, 0.2, events=events).error == ERROR


def test_no_error_object() -> None:
    ok = Observation(FaultCase(None, 200, None, 1), 200, None, 1, 0.4, body={"text": "hi"})
    assert ok.error is None
    bare = [("error", {"error": "APIError"})]
    plain_event = Observation(FaultCase(None, 200, None, 1), 200, None, 1, 0.4, events=bare)
    assert plain_event.error is None  # a bare string is not an OpenAI-shaped error object


def test_format_observations_lines_up_and_says_what_differs() -> None:
    good = Observation(MATRIX[0], 200, None, 1, 0.41)
    bad = Observation(FaultCase("hang", 504, "upstream_timeout", 3), 502, "upstream_error", 1, 2.9)
    lines = format_observations([good, bad]).splitlines()
    assert lines[0].split() == ["fault", "endpoint", "status", "code", "attempts", "as", "documented"]
    assert lines[1].split() == ["none", "/v1/chat", "200", "1", "yes"]
    assert lines[2].split() == ["hang", "/v1/chat", "502", "upstream_error", "1", "NO"]
    last_column = lines[0].index("as documented")  # aligned: the last column starts at the same place
    assert all(line.rindex(" ") + 1 == last_column for line in lines[1:])
    assert format_observations([]) == lines[0]
