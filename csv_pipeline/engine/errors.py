"""The one exception users see when a file is bad."""


class InvalidFileError(Exception):
    """A file breaks an input rule (SPEC section 2).

    The message is one sentence naming the file and, where there is one, the 1-based
    physical line, the column and the offending value, e.g.
    ``plays.csv: line 4: Number of Plays 'patata' is not a non-negative integer``.
    """

    def __init__(
        self,
        file_name: str,
        problem: str,
        *,
        line: int | None = None,
        column: str | None = None,
        value: str | None = None,
    ) -> None:
        self.file_name = file_name
        self.problem = problem
        self.line = line
        self.column = column
        self.value = value
        super().__init__(self.message)

    @property
    def message(self) -> str:
        where = f"{self.file_name}: line {self.line}: " if self.line else f"{self.file_name}: "
        subject = f"{self.column} {self.value!r} " if self.column is not None else ""
        return f"{where}{subject}{self.problem}"

    def __reduce__(self):  # keeps the keyword arguments across Dask's pickling
        return (_rebuild, (self.file_name, self.problem, self.line, self.column, self.value))


def _rebuild(file_name, problem, line, column, value) -> InvalidFileError:
    return InvalidFileError(file_name, problem, line=line, column=column, value=value)
