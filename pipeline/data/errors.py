"""The error raised for anything wrong in the data files a user supplies."""

from __future__ import annotations

from pathlib import Path


class DataValidationError(ValueError):
    """A problem in an input file, located by file and (when there is one) 1-based line number.

    `line` counts the header line when the file has one; it is None for whole-file problems
    (an empty file, a missing layout).
    """

    def __init__(self, path: Path, line: int | None, message: str) -> None:
        self.path = Path(path)
        self.line = line
        self.message = message
        super().__init__(self._render())

    def _render(self) -> str:
        where = self.path.name if self.line is None else f"{self.path.name} line {self.line}"
        return f"{where}: {self.message}"

    def __reduce__(self) -> tuple[type[DataValidationError], tuple[Path, int | None, str]]:
        return type(self), (self.path, self.line, self.message)
