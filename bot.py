"""Start the qabot Discord bot: `python bot.py [OPTIONS]` is `qabot bot [OPTIONS]` (--corpus, --check, --sync, …)."""

import sys

from qabot.cli import main as qabot_main


def main(argv: list[str] | None = None) -> int:
    """`qabot bot` with these arguments (default: the command line's)."""
    return qabot_main(["bot", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
