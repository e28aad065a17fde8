"""Operations fixtures: the console's signed-in browsers and queued conversations, reused."""
from tests.console.conftest import config, console, staff  # noqa: F401 (fixtures)
