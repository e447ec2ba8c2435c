"""The benchmark's own error: a measurement that could not be made (a process that did not
start, a warm-up that failed). The CLIs report it in one line; anything else is a bug and
keeps its traceback."""


class BenchError(Exception):
    """A benchmark could not run as asked."""
