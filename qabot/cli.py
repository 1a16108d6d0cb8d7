"""The `qabot` command: a thin skin over the library (exit 0 ok, 1 no answer, 2 user error)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from qabot import __version__
from qabot.config import Settings, load_settings
from qabot.errors import ConfigError, CorpusError, QabotError
from qabot.frontend import open_answerer, progress_bar, typed_question, warn, without_escapes

if TYPE_CHECKING:
    from qabot.model import Answer, AnswerPhrase

EXIT_OK, EXIT_NO_ANSWER, EXIT_USAGE = 0, 1, 2


class UsageError(QabotError):
    """Bad command-line usage."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one clear line, not a usage dump
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--corpus", metavar="DIR", default=argparse.SUPPRESS,
                        help="folder of .txt and .md articles (env QABOT_CORPUS; default from config: seeds/)")
    common.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                        help="settings file (default config/qabot.toml)")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks for errors")
    common.add_argument("--cluster", metavar="ADDRESS", default=argparse.SUPPRESS,
                        help="Dask scheduler to build and answer on, e.g. tcp://127.0.0.1:8786 (env QABOT_CLUSTER; "
                        "needs pip install -e '.[cluster]')")
    common.add_argument("--shards", type=int, metavar="N", default=argparse.SUPPRESS,
                        help="split the index into N shards (env QABOT_SHARDS; 0: one unsharded index)")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = _Parser(
        prog="qabot",
        description="Ask questions of a folder of articles; get the exact sentences that answer, with citations.",
        parents=[common],
        epilog="With no command, qabot opens the interactive prompt (same as 'qabot repl').",
    )
    parser.add_argument("--version", action="version", version=f"qabot {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    ask = commands.add_parser("ask", parents=[common], help="answer one question (or '-' for one per stdin line)",
                              description="Print the sentences that answer QUESTION, each with its citation.")
    ask.add_argument("question", metavar="QUESTION", nargs="+",
                     help="the question (the rest of the line; quotes optional), or '-' to read stdin, one a line")
    ask.add_argument("--top-k", type=_positive_int, metavar="N", help="number of passages (default from config: 3)")
    ask.add_argument("--json", action="store_true", help="print one JSON object (one per line in batch mode)")

    evaluate = commands.add_parser("eval", parents=[common],
                                   help="score an eval set (R@1, R@3, MRR@10, abstention, calibration)",
                                   description="Score FILE: JSON lines (schema in docs/eval-sets.md), asked of the "
                                   "corpus, or a SQuAD v1.1/v2.0 .json file, asked of its own articles (a temporary "
                                   "corpus, removed afterwards). Prints R@1, R@3, MRR@10, false abstention, "
                                   "abstention by kind, ECE and a reliability table.")
    evaluate.add_argument("file", metavar="FILE", type=Path, help="eval set: .jsonl, or SQuAD .json")
    evaluate.add_argument("--top-k", type=_positive_int, default=10, metavar="N", help="passages per question (10)")
    evaluate.add_argument("--outside", metavar="OTHER", type=Path,
                          help="add OTHER's answerable questions (.jsonl or SQuAD .json) as out-of-corpus ones, "
                          "which should abstain")
    evaluate.add_argument("--misses", action="store_true", help="also list every miss, one per line")

    index = commands.add_parser("index", parents=[common], help="build or refresh the persisted index and print stats",
                                description="Build or refresh the index (only changed files are re-read; an "
                                "unsharded index has every stored array's checksum checked, and is rebuilt if damaged) "
                                "and print stats, naming every file skipped and why.")
    index.add_argument("--json", action="store_true", help="print the stats as one JSON object")

    show = commands.add_parser("show", parents=[common], help="print a cited sentence with its surrounding lines",
                               description="Print the text a citation points at, exactly as in the file, with "
                               "line numbers and context. CITATION is PATH:LINE:COL (as printed by 'ask'), "
                               "PATH:LINE (the sentences starting on that line) or the exact span "
                               "PATH:START-END (character offsets, as in --json output).")
    show.add_argument("citation", metavar="CITATION")
    show.add_argument("--context", type=int, default=2, metavar="N", help="lines of context on each side (2)")

    verify = commands.add_parser("verify", parents=[common], help="re-check every citation in saved ask output",
                                 description="Re-read every cited file of FILE (saved output of 'qabot ask': "
                                 "--json, one object or JSON lines, or the text form with PATH:LINE:COL, PATH:LINE or "
                                 "PATH:START-END citations) and report OK, CHANGED or MISSING per citation. "
                                 "Exit 0 only when all are OK.")
    verify.add_argument("file", metavar="FILE", type=Path)

    add = commands.add_parser("add", parents=[common], help="import saved web pages and news dumps as .md articles",
                              description="Import SOURCE files into the corpus folder (or --to DIR) as Markdown "
                              "articles with front matter: saved web pages (.html, .htm; needs pip install "
                              "'qabot[import]') and news dumps (.jsonl, .jsonl.gz, .csv). Nothing is fetched from "
                              "the network. Adding an article twice adds nothing.")
    add.add_argument("sources", metavar="SOURCE", nargs="+", help="a saved page or a dump file")
    add.add_argument("--to", metavar="DIR", type=Path, help="folder to write into (default: the corpus folder)")
    add.add_argument("--field", metavar="FIELD=NAME", action="append", default=[],
                     help="read a dump's FIELD (title, date, url, text, author) from its column NAME, "
                     "e.g. --field text=article_body (repeatable)")

    commands.add_parser("repl", parents=[common], help="interactive prompt (the default with no command)",
                        description="Ask questions interactively; type :help at the prompt for commands.")

    bot = commands.add_parser("bot", parents=[common], help="run the Discord bot (same as 'python bot.py')",
                              description="Run the Discord bot. The token is read from the environment "
                              "variable named by token_env (default DISCORD_TOKEN).")
    bot.add_argument("--check", action="store_true", help="validate settings and token presence, do not connect")
    bot.add_argument("--sync", action="store_true",
                     help="publish the slash commands on start (without it: only when they changed since the last)")
    bot.add_argument("--invite-url", action="store_true",
                     help="print the URL that adds the bot to a server (scopes and permissions it needs), offline")
    bot.add_argument("--application-id", type=_positive_int, metavar="ID",
                     help="for --invite-url: the application id (default: read from the token)")
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from --config, QABOT_* variables and --corpus, in increasing priority."""
    config = getattr(args, "config", None)
    corpus = getattr(args, "corpus", None)
    overrides = {"corpus": corpus, "cluster": getattr(args, "cluster", None), "shards": getattr(args, "shards", None)}
    return load_settings(Path(config) if config else None, overrides=overrides)


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from qabot.cite import printable
    from qabot.render import render_json, render_text, terminal_width, use_color

    top_k = args.top_k or settings.top_k
    question = " ".join(args.question)
    width = None if args.json else terminal_width(sys.stdout)
    if question == "-":
        answerer = open_answerer(settings)
        for raw in sys.stdin.buffer:  # every line gets its answer, even an empty one: an abstention
            question = without_escapes(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
            answer = answerer.ask(question, top_k)
            if args.json:
                print(render_json(answer), flush=False)
            else:
                print(f"Q: {printable(question)}\n{render_text(answer, width=width)}\n")
        sys.stdout.flush()
        return EXIT_OK
    question = typed_question(question)
    answer = open_answerer(settings).ask(question, top_k)
    print(render_json(answer) if args.json else render_text(answer, color=use_color(sys.stdout), width=width))
    return EXIT_NO_ANSWER if answer.abstained else EXIT_OK


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from qabot.answer import clean_question
    from qabot.eval_report import render_report
    from qabot.eval_set import open_eval_set
    from qabot.evaluate import evaluate
    from qabot.phrase import best_phrase

    with open_eval_set(args.file, args.outside) as eval_set:
        if eval_set.corpus is not None and getattr(args, "corpus", None):
            warn(f"--corpus is not used: {args.file} is asked of its own articles")
        answerer = open_answerer(eval_set.settings_for(settings))

        def read(question: str, answer: Answer) -> AnswerPhrase | None:  # the best phrase, shown or not
            return best_phrase(clean_question(question), answer.passages[0], answer.confidence, answerer.index)

        report = evaluate(eval_set.items, answerer.ask, args.top_k, read)
    print(render_report(report, misses=args.misses))
    return EXIT_OK


def cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    from qabot.cite import printable
    from qabot.store import IndexParams, open_index

    if settings.cluster or settings.shards:
        from qabot.sharded import index_summary

        if args.json:
            raise UsageError("index --json is for an unsharded index; leave out --cluster and --shards")
        print(index_summary(settings, warn))
        return EXIT_OK
    started = time.perf_counter()
    params = IndexParams.from_settings(settings)
    index, report = open_index(settings.corpus, settings.index_dir, params, warn, progress_bar(), verify=True)
    seconds = time.perf_counter() - started
    if args.json:
        import json

        stats = {"action": report.action, "seconds": round(seconds, 3), "articles": len(index.docs),
                 "sentences": index.n_sentences, "terms": len(index.vocab), "added": report.added,
                 "changed": report.changed, "removed": report.removed,
                 "skipped": [{"path": skip.path, "reason": skip.reason} for skip in index.skipped]}  # fmt: skip
        print(json.dumps(stats, ensure_ascii=False))
        return EXIT_OK
    detail = ""
    if report.action == "refreshed":
        detail = f" ({report.added} added, {report.changed} changed, {report.removed} removed)"
    listing = ":" if index.skipped else ""
    print(f"index {report.action}{detail} in {seconds:.2f}s: {len(index.docs)} articles, "
          f"{index.n_sentences} sentences, {len(index.vocab)} terms, {len(index.skipped)} files skipped{listing}")
    for skip in index.skipped:  # named on every run: the warnings are printed only when a file is first met
        print(f"  {printable(skip.path)}: {printable(skip.reason)}")
    if not index.docs:  # nothing to answer from: a setup mistake, as for 'ask'
        raise CorpusError(f"the corpus folder {settings.corpus} holds no readable articles; add articles or pass "
                          "--corpus DIR")
    return EXIT_OK


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    from qabot.cite_show import show_citation
    from qabot.render import use_color
    from qabot.segment import compile_boilerplate

    boilerplate = compile_boilerplate(settings.boilerplate_patterns)
    print(show_citation(settings.corpus, args.citation, args.context, color=use_color(sys.stdout),
                        boilerplate=boilerplate))
    return EXIT_OK


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    from qabot.cite_verify import verify_saved_output
    from qabot.segment import compile_boilerplate

    boilerplate = compile_boilerplate(settings.boilerplate_patterns)
    result = verify_saved_output(settings.corpus, args.file, boilerplate=boilerplate)
    print(result.report, flush=True)
    if result.refused:  # a path outside the corpus is a usage error, as for 'show'
        print(f"qabot: error: {result.refused} citation(s) outside the corpus folder {settings.corpus} "
              "were refused", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK if result.all_ok else EXIT_NO_ANSWER


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    from qabot.dumps import field_mapping
    from qabot.importer import add_sources

    for report in add_sources(args.sources, args.to or settings.corpus, field_mapping(args.field)):
        print("\n".join(report.lines()), flush=True)
    return EXIT_OK


def cmd_repl(args: argparse.Namespace, settings: Settings) -> int:
    from qabot.repl import run_repl

    return run_repl(settings)


def cmd_bot(args: argparse.Namespace, settings: Settings) -> int:
    if args.invite_url:
        return print_invite_url(settings, args.application_id)
    from qabot.discord_bot import run_bot

    return run_bot(settings, check=args.check, sync=args.sync)


def print_invite_url(settings: Settings, application_id: int | None) -> int:
    """Print the bot's invite URL; the id comes from --application-id, else from the token (never printed)."""
    from qabot.discord_invite import application_id_from_token, invite_url

    if application_id is None:
        token = os.environ.get(settings.token_env, "").strip()
        if not token:
            raise ConfigError(
                f"no application id: pass --application-id ID (Developer Portal, General Information) "
                f"or set {settings.token_env} to the bot token"
            )
        try:
            application_id = application_id_from_token(token, settings.token_env)
        except ConfigError as exc:
            raise ConfigError(f"{exc}; or pass --application-id ID") from None
    print(invite_url(application_id))
    return EXIT_OK


COMMANDS = {
    "ask": cmd_ask, "eval": cmd_eval, "index": cmd_index, "show": cmd_show,
    "verify": cmd_verify, "add": cmd_add, "repl": cmd_repl, "bot": cmd_bot, None: cmd_repl,
}  # fmt: skip


def parse_arguments(argv: Sequence[str]) -> argparse.Namespace:
    """The parsed command line; for `ask`, words after an option are still part of the question."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "ask" and not any(word.startswith("-") for word in extra):
        args.question += extra  # `ask Who is --top-k 2 Louis Bono`: argparse leaves "Louis Bono" over
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `qabot` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = parse_arguments(argv)
        return COMMANDS[args.command](args, settings_from_args(args))
    except QabotError as exc:
        if debug:
            raise
        print(f"qabot: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("qabot: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
