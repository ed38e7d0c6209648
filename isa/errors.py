"""Errors a user's kernel can cause; the CLI prints their message alone, without a traceback."""


class IsaError(ValueError):
    """Base of every error that names a mistake in a kernel, a program or its inputs."""


class AsmError(IsaError):
    """Malformed assembly text; the message names the file, line, column and what was expected."""

    def __init__(self, message: str, line: int, column: int, source: str = "<asm>", text: str = ""):
        self.line, self.column, self.source, self.text = line, column, source, text
        caret = f"\n    {text}\n    {' ' * (column - 1)}^" if text else ""
        super().__init__(f"{source}:{line}:{column}: {message}{caret}")


class CheckError(IsaError):
    """A kernel failed its static checks; `problems` lists each one."""

    def __init__(self, kernel: str, problems: list[str]):
        self.kernel, self.problems = kernel, problems
        shown = problems[:20]
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        lines = "\n  ".join(shown)
        head = f"kernel {kernel}: {len(problems)} problem(s) found before running:"
        super().__init__(f"{head}\n  {lines}{more}")

    @property
    def first(self) -> str:
        """The first problem on one line, and how many more there are."""
        more = f" (and {len(self.problems) - 1} more problem(s))" if len(self.problems) > 1 else ""
        return f"kernel {self.kernel}, {self.problems[0]}{more}"
