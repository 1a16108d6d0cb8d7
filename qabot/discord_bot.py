"""The Discord bot: `/ask`, `!ask` and @mentions answered like `qabot ask`, without ever blocking the loop.

Retrieval runs in a worker thread (`asyncio.to_thread`), every send passes AllowedMentions.none(), and
replies are rendered by qabot.discord_render. The token is read from the environment at start-up only.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands, tasks

from qabot.answer import Answerer
from qabot.config import Settings
from qabot.discord_invite import application_id_from_token
from qabot.discord_render import answer_reply, context_embed, safe_text
from qabot.errors import ConfigError, QabotError
from qabot.frontend import answerer_for, corpus_changed
from qabot.model import Answer

log = logging.getLogger("qabot.discord")

NO_MENTIONS = discord.AllowedMentions.none()
MAX_SLASH_TOP_K = 10
CONTEXT_TIMEOUT = 15 * 60.0  # seconds the "Show context" button keeps working
SYNCED_COMMANDS_FILE = "discord-commands.sha256"

Loader = Callable[[Settings], Answerer]


def load_answerer(settings: Settings) -> Answerer:
    """The answerer for settings; index warnings (skipped files) go to the log."""
    return answerer_for(settings, warn=log.warning)


class ContextView(discord.ui.View):
    """The "Show context" button under an answer: reveals each passage's neighbouring sentences."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(timeout=CONTEXT_TIMEOUT)
        self.answer = answer
        self.message: discord.Message | None = None

    @discord.ui.button(label="Show context", style=discord.ButtonStyle.secondary, custom_id="qabot:context")
    async def show_context(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.send_message(
            embed=context_embed(self.answer), ephemeral=True, allowed_mentions=NO_MENTIONS
        )

    async def on_timeout(self) -> None:
        # A dead button only says "interaction failed"; remove it instead.
        if self.message is not None:
            try:
                await self.message.edit(view=None, allowed_mentions=NO_MENTIONS)
            except discord.HTTPException:
                log.debug("could not remove the context button from message %s", self.message.id)


class QabotBot(commands.Bot):
    """A commands.Bot holding the current Answerer; `reload_answerer` swaps in a fresh one."""

    def __init__(
        self,
        settings: Settings,
        answerer: Answerer,
        *,
        sync: bool = False,
        loader: Loader = load_answerer,
        synced_file: Path | None = None,
    ) -> None:
        """sync: publish the slash commands on start. synced_file: where the fingerprint of the last published
        commands is kept; when given, a start whose commands differ from it publishes them."""
        intents = discord.Intents.default()
        intents.message_content = True  # prefix commands and mentions need the text of messages
        # The bot never joins voice, so discord.py's "PyNaCl/davey is not installed, voice will NOT be
        # supported" warnings would only alarm whoever runs it.
        discord.VoiceClient.warn_nacl = False
        discord.VoiceClient.warn_dave = False
        super().__init__(
            command_prefix=settings.command_prefix,
            intents=intents,
            allowed_mentions=NO_MENTIONS,
            owner_ids=set(settings.owner_ids),  # empty: the application owner
        )
        self.settings = settings
        self.answerer = answerer
        self.sync_on_start = sync
        self.synced_file = synced_file
        self.loader = loader
        self._reload_lock = asyncio.Lock()

    async def setup_hook(self) -> None:
        await self.add_cog(AskCog(self))
        if self.sync_on_start:
            synced = await self.tree.sync()
            log.info("synced %d application commands", len(synced))
            self.remember_sync()
        elif self.synced_file is not None:
            await self._sync_if_commands_changed(self.synced_file)

    async def _sync_if_commands_changed(self, synced_file: Path) -> None:
        # Syncing is rate-limited by Discord, so a start publishes the commands only when they differ from
        # the ones it last published (the first run, or a new version), never on every start.
        fingerprint = command_fingerprint(self.tree, self.application_id)
        if _read_quietly(synced_file) == fingerprint:
            return
        try:
            synced = await self.tree.sync()
        except discord.HTTPException as exc:
            log.warning("could not publish the slash commands (%s); /ask appears after a run with --sync", exc)
            return
        log.info("published %d application commands (they changed since the last run)", len(synced))
        self.remember_sync()

    def remember_sync(self) -> None:
        """Record the fingerprint of the commands just published (when a synced_file is set)."""
        if self.synced_file is None:
            return
        try:
            self.synced_file.parent.mkdir(parents=True, exist_ok=True)
            self.synced_file.write_text(command_fingerprint(self.tree, self.application_id) + "\n", "utf-8")
        except OSError as exc:  # the next start syncs again, which is harmless
            log.warning("cannot record the published commands in %s (%s)", self.synced_file, exc.strerror or exc)

    async def reload_answerer(self) -> str | None:
        """Rebuild the answerer in a worker thread and swap it in; on failure keep the old one.

        Returns None on success, else a short description of the failure.
        """
        async with self._reload_lock:
            started = time.perf_counter()
            try:
                fresh = await asyncio.to_thread(self.loader, self.settings)
            except Exception as exc:  # any failure must leave the bot serving the previous index
                log.warning("reload failed (%s: %s); still serving the previous index", type(exc).__name__, exc)
                return f"{type(exc).__name__}: {exc}"
            self.answerer = fresh
            log.info(
                "reloaded index: %d articles, %d sentences in %.0f ms",
                len(fresh.index.docs), fresh.index.n_sentences, (time.perf_counter() - started) * 1000,
            )
            return None

    async def on_command_error(self, context: commands.Context, exception: commands.CommandError) -> None:
        if isinstance(exception, commands.CommandNotFound | commands.CheckFailure):
            return  # "!" starts plenty of ordinary messages; stay quiet
        log.error("command %s failed: %s", context.command, type(exception).__name__, exc_info=exception)
        await context.reply("Sorry, something went wrong with that command.", allowed_mentions=NO_MENTIONS)


class AskCog(commands.Cog):
    """Answers questions from `/ask`, `!ask` and messages that mention the bot."""

    def __init__(self, bot: QabotBot) -> None:
        self.bot = bot
        settings = bot.settings
        self.settings = settings
        # One bucket per user id, shared by the slash command, the prefix command and mentions.
        self.cooldowns: commands.CooldownMapping[int] = commands.CooldownMapping.from_cooldown(
            settings.cooldown_rate, settings.cooldown_seconds, lambda user_id: user_id
        )
        if settings.reload_poll_seconds > 0:
            self.poll_corpus.change_interval(seconds=settings.reload_poll_seconds)

    async def cog_load(self) -> None:
        if self.settings.reload_poll_seconds > 0:
            self.poll_corpus.start()

    async def cog_unload(self) -> None:
        self.poll_corpus.cancel()

    @tasks.loop(seconds=60)
    async def poll_corpus(self) -> None:
        """Refresh the index every reload_poll_seconds when a file changed (the first tick is start-up).

        An unchanged corpus keeps the answerer and its caches; a failed check reloads, which reports.
        """
        if self.poll_corpus.current_loop == 0:
            return
        try:
            changed = await asyncio.to_thread(corpus_changed, self.bot.answerer)
        except Exception:  # the reload logs what is wrong and keeps serving
            changed = True
        if changed:
            await self.bot.reload_answerer()

    # --- entry points -------------------------------------------------------------------------------

    @app_commands.command(name="ask")
    @app_commands.describe(
        question="What you want to know, e.g. Who is Louis Bono?",
        top_k=f"How many passages to show (1-{MAX_SLASH_TOP_K})",
    )
    async def ask_slash(
        self,
        interaction: discord.Interaction,
        question: str,
        top_k: app_commands.Range[int, 1, MAX_SLASH_TOP_K] | None = None,
    ) -> None:
        """Ask the articles a question; get the sentences that answer it, with citations."""
        if not self.channel_allowed(interaction.channel_id, interaction.channel):
            await interaction.response.send_message(
                "I only answer questions in the channels I was set up for.", ephemeral=True,
                allowed_mentions=NO_MENTIONS,
            )
            return
        refusal = self.refusal(question, interaction.user.id, interaction.channel_id, "slash")
        if refusal:
            await interaction.response.send_message(refusal, ephemeral=True, allowed_mentions=NO_MENTIONS)
            return
        # Retrieval usually takes milliseconds, but a cold index or a busy host can pass Discord's 3 s limit.
        await interaction.response.defer(thinking=True)
        answer, articles = await self.answer(question, top_k, interaction.user.id, interaction.channel_id, "slash")
        reply = answer_reply(answer, articles)
        view = None if reply.embed is None else ContextView(answer)
        message = await interaction.followup.send(
            **_send_kwargs(reply.content, reply.embed, view), allowed_mentions=NO_MENTIONS, wait=True
        )
        if view is not None:
            view.message = message

    @commands.command(name="ask")
    async def ask_prefix(self, ctx: commands.Context, *, question: str = "") -> None:
        """Ask the articles a question, e.g. !ask Who is Louis Bono?"""
        await self.respond(ctx.message, question, "prefix")

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """A message that @mentions the bot is a question (unless it is a prefix command)."""
        me = self.bot.user
        if message.author.bot or me is None or not any(user.id == me.id for user in message.mentions):
            return
        if message.content.startswith(self.settings.command_prefix):
            return  # the command handles it
        question = re.sub(rf"<@!?{me.id}>", " ", message.content).strip()
        await self.respond(message, question, "mention")

    @commands.command(name="reload")
    async def reload_prefix(self, ctx: commands.Context) -> None:
        """Re-read changed articles and swap in the new index (owner only)."""
        if not await self.bot.is_owner(ctx.author):
            await ctx.reply("Only the bot's owner can reload the articles.", allowed_mentions=NO_MENTIONS)
            return
        await ctx.reply(await self.reload_text(), allowed_mentions=NO_MENTIONS)

    @app_commands.command(name="reload")
    async def reload_slash(self, interaction: discord.Interaction) -> None:
        """Re-read changed articles and swap in the new index (owner only)."""
        if not await self.bot.is_owner(interaction.user):
            await interaction.response.send_message(
                "Only the bot's owner can reload the articles.", ephemeral=True, allowed_mentions=NO_MENTIONS
            )
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        await interaction.followup.send(await self.reload_text(), ephemeral=True, allowed_mentions=NO_MENTIONS)

    @commands.command(name="sync")
    async def sync_prefix(self, ctx: commands.Context) -> None:
        """Publish the slash commands to Discord (owner only; global commands can take an hour to appear)."""
        if not await self.bot.is_owner(ctx.author):
            await ctx.reply("Only the bot's owner can sync commands.", allowed_mentions=NO_MENTIONS)
            return
        synced = await self.bot.tree.sync()
        self.bot.remember_sync()
        await ctx.reply(f"Synced {len(synced)} slash commands.", allowed_mentions=NO_MENTIONS)

    # --- shared steps ---------------------------------------------------------------------------------

    def channel_allowed(self, channel_id: int | None, channel: Any) -> bool:
        """True when no allow-list is set, or the channel (or, for a thread, its parent) is on it."""
        allowed = self.settings.allowed_channels
        return not allowed or channel_id in allowed or getattr(channel, "parent_id", None) in allowed

    def refusal(self, question: str, user_id: int, channel_id: int | None, via: str) -> str | None:
        """A polite reason not to answer (too long, or too many questions lately), or None."""
        limit = self.settings.max_question_chars
        if len(question) > limit:
            reason = "too_long"
            text = f"That question is {len(question):,} characters long; please keep it under {limit:,} characters."
        elif retry_after := self.cooldowns.update_rate_limit(user_id):
            reason = "cooldown"
            text = f"Slow down a little: you can ask again in {max(1, round(retry_after))} s."
        else:
            return None
        log.info("question user=%s channel=%s via=%s refused=%s", user_id, channel_id, via, reason)
        return text

    async def respond(self, message: discord.Message, question: str, via: str) -> None:
        """Reply to a prefix or mention question in its channel (nothing outside the allow-list)."""
        if not self.channel_allowed(message.channel.id, message.channel):
            return
        if not question.strip():
            await message.reply(
                f"Ask me something, e.g. `{self.settings.command_prefix}ask Who is Louis Bono?`",
                allowed_mentions=NO_MENTIONS,
            )
            return
        refusal = self.refusal(question, message.author.id, message.channel.id, via)
        if refusal:
            await message.reply(refusal, allowed_mentions=NO_MENTIONS)
            return
        answer, articles = await self.answer(question, None, message.author.id, message.channel.id, via)
        reply = answer_reply(answer, articles)
        view = None if reply.embed is None else ContextView(answer)
        sent = await message.reply(**_send_kwargs(reply.content, reply.embed, view), allowed_mentions=NO_MENTIONS)
        if view is not None:
            view.message = sent

    async def answer(
        self, question: str, top_k: int | None, user_id: int, channel_id: int | None, via: str
    ) -> tuple[Answer, int]:
        """The answer (computed in a worker thread) and the article count of the index that gave it."""
        answerer = self.bot.answerer  # one snapshot: a reload may swap it meanwhile
        started = time.perf_counter()
        answer = await asyncio.to_thread(answerer.ask, question, top_k)
        # Never the question or the answer text: message content stays out of the logs.
        log.info(
            "question user=%s channel=%s via=%s latency_ms=%.0f abstained=%s",
            user_id, channel_id, via, (time.perf_counter() - started) * 1000, answer.abstained,
        )
        return answer, len(answerer.index.docs)

    async def reload_text(self) -> str:
        failure = await self.bot.reload_answerer()
        if failure is not None:
            return "Reload failed; still answering from the previous index. " + safe_text(failure, 300)
        index = self.bot.answerer.index
        return f"Reloaded: {len(index.docs):,} articles, {index.n_sentences:,} sentences."


def command_fingerprint(tree: app_commands.CommandTree, application_id: int | None) -> str:
    """sha256 of the application id and the slash commands' definitions as Discord receives them."""
    payload = [command.to_dict(tree) for command in tree.get_commands()]
    text = json.dumps({"application_id": application_id, "commands": payload}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _read_quietly(path: Path) -> str | None:
    try:
        return path.read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _send_kwargs(content: str | None, embed: discord.Embed | None, view: discord.ui.View | None) -> dict:
    kwargs: dict[str, Any] = {}
    if content is not None:
        kwargs["content"] = content
    if embed is not None:
        kwargs["embed"] = embed
    if view is not None:
        kwargs["view"] = view
    return kwargs


# --- start-up ---------------------------------------------------------------------------------------------


class RedactingFormatter(logging.Formatter):
    """Formats log lines (tracebacks included) with the token replaced, wherever it would appear."""

    def __init__(self, token: str) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.token = token

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text.replace(self.token, "[redacted token]") if self.token else text


def check_settings(settings: Settings, environ: Mapping[str, str]) -> list[str]:
    """Problems that would stop the bot from starting (empty when it can start); no network, no token shown."""
    from qabot.corpus import list_articles

    problems = []
    token = environ.get(settings.token_env, "").strip()
    if not token:
        problems.append(
            f"the bot token is missing: set the environment variable {settings.token_env} "
            "(the name comes from token_env in [discord] of the config)"
        )
    else:
        try:
            application_id_from_token(token, settings.token_env)
        except ConfigError as exc:
            problems.append(str(exc))
    try:
        articles, _ = list_articles(settings.corpus)
    except QabotError as exc:
        problems.append(str(exc))
    else:
        if not articles:
            problems.append(f"the corpus folder {settings.corpus} holds no *.txt articles")
    return problems


def synced_commands_file(settings: Settings) -> Path:
    """Where the fingerprint of the last published slash commands is kept: beside the index."""
    return settings.index_dir / SYNCED_COMMANDS_FILE


def run_bot(settings: Settings, check: bool = False, sync: bool = False) -> int:
    """Run the bot until it is stopped (exit code 0); with check, validate settings offline and exit.

    Raises ConfigError when the token is missing, CorpusError when the corpus cannot be read.
    """
    problems = check_settings(settings, os.environ)
    if check:
        for problem in problems:
            print(f"qabot bot: missing or wrong: {problem}", file=sys.stderr)
        if problems:
            return 2
        print(
            f"qabot bot: settings look fine (corpus {settings.corpus}, prefix {settings.command_prefix!r}, "
            f"token from ${settings.token_env}); not connecting because of --check"
        )
        return 0
    token = os.environ.get(settings.token_env, "").strip()
    if not token:
        raise ConfigError(problems[0])
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter(token))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        bot = QabotBot(settings, load_answerer(settings), sync=sync, synced_file=synced_commands_file(settings))
        bot.run(token, log_handler=None)
    except discord.LoginFailure:
        raise ConfigError(
            f"Discord rejected the token in {settings.token_env}; copy it again from the Developer Portal"
        ) from None
    except discord.PrivilegedIntentsRequired:
        raise ConfigError(
            "the Message Content intent is off; enable it for the bot in the Developer Portal"
        ) from None
    except (OSError, aiohttp.ClientError, discord.GatewayNotFound) as exc:
        raise QabotError(f"cannot reach Discord ({type(exc).__name__}); check the network and try again") from None
    finally:
        root.removeHandler(handler)
    return 0
