"""Start the qabot Discord bot (same as `qabot bot`): python bot.py [--check] [--sync] [--config FILE]."""

import argparse
import sys
from pathlib import Path

from qabot.config import load_settings
from qabot.errors import QabotError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bot.py", description="Run the qabot Discord bot.")
    parser.add_argument("--config", type=Path, help="settings file (default config/qabot.toml)")
    parser.add_argument("--check", action="store_true", help="validate settings and token presence, do not connect")
    parser.add_argument("--sync", action="store_true", help="sync slash commands to Discord on start")
    args = parser.parse_args(argv)
    try:
        from qabot.discord_bot import run_bot

        return run_bot(load_settings(args.config), check=args.check, sync=args.sync)
    except QabotError as exc:
        print(f"qabot: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
