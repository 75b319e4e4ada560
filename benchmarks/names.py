"""The bench suite names, in one place light enough for the CLI's argument parser to import."""

SUITE_NAMES = ("stack", "cache", "index", "ranking", "routing", "quality", "ladder")
ALL = ("stack", "cache", "index", "ranking", "routing")  # `--suite all`: the serving suites (quality, ladder train)
