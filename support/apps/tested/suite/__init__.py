"""The example service's test suite: one file per way of testing it without a network (notebook 13)."""
