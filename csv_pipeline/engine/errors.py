"""The exceptions users see: a bad file, and a file that changed while it was read."""


class InvalidFileError(Exception):
    """A file breaks an input rule (docs/contract.md, "Input file").

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


class InputChangedError(Exception):
    """The input file changed or disappeared while the run read it.

    Not a bad file: the rows read would mix two versions of it, so there is no result; a
    run of its new content gives one. The message is one sentence naming the file.
    """

    def __init__(self, file_name: str, problem: str) -> None:
        super().__init__(file_name, problem)
        self.file_name = file_name
        self.problem = problem

    @property
    def message(self) -> str:
        return f"{self.file_name}: {self.problem}; no result was written for it"

    def __str__(self) -> str:
        return self.message
