"""End-to-end tests of the Discord bot through discord.py's real dispatch (dpytest), on the seeds corpus."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import re
import time
import types
from pathlib import Path
from urllib.parse import unquote

import discord
import discord.ext.test as dpytest
import pytest
import pytest_asyncio
from discord.ext import commands
from discord.ext.test import backend, factories
from discord.webhook.async_ import AsyncWebhookAdapter, async_context

from qabot import discord_bot
from qabot.answer import Answerer
from qabot.config import Settings, replace
from qabot.discord_bot import (
    AskCog,
    QabotBot,
    RedactingFormatter,
    check_settings,
    command_fingerprint,
    run_bot,
    synced_commands_file,
)
from qabot.discord_render import ZWSP
from qabot.errors import ConfigError
from qabot.frontend import answerer_for
from tests.conftest import answerer_over, settings_for

SENTINEL_TOKEN = "MTA5OTk5.SENTINEL-token-do-not-log.xyzXYZ123"
ALLOWED_CHANNEL_ID = 1_111_111_111_111_111_111
RAW_MENTION = re.compile(r"@(everyone|here)|<@[!&]?\d+>")


# --- fixtures ------------------------------------------------------------------------------------------


class RecordingAdapter(AsyncWebhookAdapter):
    """Stands in for Discord's HTTP API for interaction responses and follow-ups.

    dpytest fakes the gateway and REST calls of messages, but not interactions; discord.py sends those
    through the webhook adapter in `async_context`, so recording there keeps the real Interaction,
    InteractionResponse and Webhook objects in the path.
    """

    def __init__(self, bot: discord.Client) -> None:
        super().__init__()
        self.bot = bot
        self.calls: list[tuple[str, dict]] = []

    async def create_interaction_response(self, interaction_id, token, *, session, proxy=None, proxy_auth=None,
                                          params):
        self.calls.append(("response", params.payload))
        return {"interaction": {"id": str(interaction_id), "type": 2}}

    async def execute_webhook(self, webhook_id, token, *, session, payload=None, wait=False, **kwargs):
        self.calls.append(("followup", payload))
        if not wait:
            return None
        channel = dpytest.get_config().channels[0]
        embeds = [discord.Embed.from_dict(e) for e in (payload or {}).get("embeds", [])]
        return factories.make_message_dict(channel, self.bot.user, content=(payload or {}).get("content") or "",
                                           embeds=embeds)


@pytest.fixture
def sent_payloads(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """The JSON payload of every message the bot sends.

    dpytest's fake HTTP drops `allowed_mentions`, so record the payload where discord.py builds it.
    """
    payloads: list[dict] = []
    real = discord.abc.handle_message_parameters

    def recording(*args, **kwargs):
        params = real(*args, **kwargs)
        payloads.append(params.payload)
        return params

    monkeypatch.setattr(discord.abc, "handle_message_parameters", recording)
    return payloads


@pytest_asyncio.fixture
async def make_bot(seeds_settings: Settings, answerer: Answerer):
    """Factory: a configured QabotBot (settings changed as asked) wired into dpytest with 3 members."""
    bots: list[QabotBot] = []

    async def factory(settings: Settings | None = None, answerer_: Answerer | None = None, **changes) -> QabotBot:
        settings = replace(settings or seeds_settings, **changes)
        bot = QabotBot(settings, answerer_ or answerer)
        await bot._async_setup_hook()  # what login() does; dpytest never logs in
        # dpytest creates members through the member cache, which exists only with the (privileged)
        # members intent; the bot itself does not need that intent, so grant it here only.
        bot._connection._intents.members = True
        bot._connection.member_cache_flags = discord.MemberCacheFlags.from_intents(bot._connection._intents)
        dpytest.configure(bot, text_channels=2, members=3)
        # dpytest swaps in its own ConnectionState after the command tree was created with the old one;
        # point the new state at the tree so INTERACTION_CREATE reaches our slash commands.
        bot._connection._command_tree = bot.tree
        bot.tree._state = bot._connection
        await bot.setup_hook()
        bots.append(bot)
        return bot

    yield factory
    for bot in bots:
        await bot.remove_cog("AskCog")  # stops the polling task
    await dpytest.empty_queue()


@pytest_asyncio.fixture
async def bot(make_bot) -> QabotBot:
    return await make_bot()


def replies() -> list[discord.Message]:
    """Every message the bot sent since the last call, oldest first."""
    out = []
    while not dpytest.sent_queue.empty():
        out.append(dpytest.get_message())
    return out


def embed_text(embed: discord.Embed) -> str:
    parts = [embed.title or "", embed.description or "", embed.footer.text or ""]
    parts += [f"{field.name}\n{field.value}" for field in embed.fields]
    return "\n".join(parts)


def assert_no_pings(payload: dict) -> None:
    """Discord pings nobody: no parsed mention kinds, no explicit users or roles, not the replied-to author."""
    allowed = payload["allowed_mentions"]
    assert allowed["parse"] == [] and not allowed.get("users") and not allowed.get("roles")
    assert not allowed.get("replied_user")


async def settle() -> None:
    """Wait for slash-command and button callbacks (their tasks are not dpytest events)."""
    await dpytest.run_all_events()
    while True:
        current = asyncio.current_task()
        pending = [
            task for task in asyncio.all_tasks()
            if task is not current and not task.done()
            and task.get_name().startswith(("CommandTree-invoker", "discord-ui-view-dispatch"))
        ]
        if not pending:
            return
        await asyncio.gather(*pending)


def interaction_payload(bot: QabotBot, kind: int, data: dict, member: discord.Member | None = None,
                        message: discord.Message | None = None) -> dict:
    """An INTERACTION_CREATE payload as the gateway sends it."""
    config = dpytest.get_config()
    channel = config.channels[0]
    member = member or config.members[0]
    payload = {
        "id": str(factories.make_id()),
        "application_id": str(bot.user.id),
        "type": kind,
        "token": "interaction-token",
        "version": 1,
        "data": data,
        "guild_id": str(channel.guild.id),
        "channel_id": str(channel.id),
        "channel": {"id": str(channel.id), "type": 0, "guild_id": str(channel.guild.id), "name": channel.name},
        "member": {**factories.dict_from_member(member), "permissions": "0"},
        "app_permissions": "0",
        "locale": "en-US",
        "attachment_size_limit": 8_000_000,
        "entitlements": [],
        "authorizing_integration_owners": {},
    }
    if message is not None:
        payload["message"] = factories.dict_from_message(message)
    return payload


async def slash(bot: QabotBot, adapter: RecordingAdapter, name: str, member=None, **options) -> None:
    kinds = {str: 3, int: 4}
    data = {
        "id": str(factories.make_id()), "name": name, "type": 1,
        "options": [{"name": key, "type": kinds[type(value)], "value": value} for key, value in options.items()],
    }
    token = async_context.set(adapter)
    try:
        bot._connection.parse_interaction_create(interaction_payload(bot, 2, data, member))
        await settle()
    finally:
        async_context.reset(token)


# --- prefix and mention flows ---------------------------------------------------------------------------


async def test_prefix_ask_replies_with_one_embed_of_cited_passages(bot, sent_payloads):
    await dpytest.message("!ask Who is Louis Bono?")
    [reply] = replies()
    embed = reply.embeds[0]
    assert embed.title == "Who is Louis Bono?"
    assert "> " in embed.description and "**Bono**" in embed.description
    citations = re.findall(r"`([^`]+\.txt):(\d+):(\d+)`", embed.description)
    assert citations and ("000_9ad8541396ee1ed9.txt", "3", "1") in citations
    assert embed.fields[0].name == "Sources" and "000_9ad8541396ee1ed9.txt" in embed.fields[0].value
    label = r"(?:Likely answer|Possible match|Weak match: check the source) \(confidence \d+%\)"
    assert re.match(label + r" · Searched \d+ sentences", embed.footer.text)
    assert "2023-08-03" in embed.description  # article date where known
    assert_no_pings(sent_payloads[-1])
    assert sent_payloads[-1]["components"], "the Show context button is attached"


class ArticleUrls(Answerer):
    """An answerer whose passages carry their article's web address, as front matter `url` gives it."""

    def ask(self, question: str, top_k: int | None = None):
        answer = super().ask(question, top_k)
        return dataclasses.replace(
            answer, passages=tuple(dataclasses.replace(p, url=f"https://news.example/{p.location.source}?id=1&v=2")
                                   for p in answer.passages),
        )  # fmt: skip


async def test_an_article_with_a_web_address_links_its_title_with_a_text_fragment(make_bot, tmp_path):
    sentence = ('Unions, managers and the operator agreed on Monday that full tram service resumes "on Friday, '
                'March 15 - at the latest."')
    files = {"tram.txt": f"Tram service to resume\n\nWorkers walked out last week over pay.\n\n{sentence}\n",
             "weather.txt": "Weather\n\nIt rained in the city on Tuesday.\n"}
    plain = answerer_over(tmp_path, files)
    await make_bot(answerer_=ArticleUrls(plain.index, plain.params, plain.models))
    await dpytest.message("!ask When does full tram service resume?")
    [reply] = replies()
    description = reply.embeds[0].description
    first = next(block for block in description.split("\n\n") if "`tram.txt:" in block)
    assert "`tram.txt:5:1`" in first  # the file citation stays
    link = re.search(r"· \[Tram service to resume\]\((?P<target>[^)\s]+)\)$", first, re.MULTILINE)
    assert link is not None, description
    address, directive = link["target"].split("#:~:text=")
    assert address == "https://news.example/tram.txt?id=1&v=2"
    start, end = directive.split(",")  # textStart,textEnd: the passage's first and last words
    assert start == "Unions%2C%20managers%20and%20the" and end == "%2D%20at%20the%20latest.%22"
    assert sentence.startswith(unquote(start) + " ") and sentence.endswith(" " + unquote(end))


async def test_every_cited_line_holds_the_quoted_text(bot, answerer):
    await dpytest.message("!ask who is pashinian")
    embed = replies()[0].embeds[0]
    citations = re.findall(r"`([^`]+\.txt):(\d+):(\d+)`", embed.description)
    assert citations
    for source, line, column in citations:
        file_line = (answerer.root / source).read_text("utf-8").splitlines()[int(line) - 1]
        assert "Pashinian" in file_line[int(column) - 1 :]


async def test_mention_is_a_question(bot, sent_payloads):
    await dpytest.message(f"<@{bot.user.id}> Who is Louis Bono?")
    [reply] = replies()
    assert reply.embeds[0].title == "Who is Louis Bono?"
    assert_no_pings(sent_payloads[-1])


async def test_abstention_is_a_short_plain_reply(bot, sent_payloads):
    await dpytest.message("!ask What is the boiling point of mercury on Jupiter?")
    [reply] = replies()
    assert not reply.embeds
    assert reply.content.startswith("The articles have no answer to that.")
    assert re.search(r"Searched \d+ sentences in \d+ articles", reply.content)
    assert "components" not in sent_payloads[-1] or not sent_payloads[-1]["components"]


async def test_here_in_the_question_pings_nobody(bot, sent_payloads):
    await dpytest.message("!ask @here who is pashinian?")
    [reply] = replies()
    shown = embed_text(reply.embeds[0])
    assert f"@{ZWSP}here" in reply.embeds[0].title
    assert not RAW_MENTION.search(shown)
    assert not reply.mention_everyone and not reply.role_mentions and not reply.mentions
    assert_no_pings(sent_payloads[-1])


async def test_abstention_quoting_everyone_pings_nobody(bot, sent_payloads):
    other = dpytest.get_config().members[1]
    await dpytest.message(f"!ask @everyone <@&123456789012345678> <@{other.id}> zzyzx")
    [reply] = replies()
    assert "zzyzx" in reply.content and not RAW_MENTION.search(reply.content)
    assert not reply.mention_everyone and not reply.role_mentions and not reply.mentions
    assert_no_pings(sent_payloads[-1])


async def test_too_long_question_is_refused_politely(make_bot):
    await make_bot(max_question_chars=40)
    await dpytest.message("!ask " + "Who is Louis Bono, really, and why? " * 3)
    [reply] = replies()
    assert "please keep it under 40 characters" in reply.content and not reply.embeds


async def test_empty_question_gets_a_hint(bot):
    await dpytest.message("!ask")
    assert "!ask Who is Louis Bono?" in replies()[0].content


async def test_cooldown_says_slow_down(make_bot, caplog):
    caplog.set_level(logging.INFO)
    await make_bot(cooldown_rate=2, cooldown_seconds=60)
    for _ in range(3):
        await dpytest.message("!ask Who is Louis Bono?")
    first, second, third = replies()
    assert first.embeds and second.embeds
    assert third.content.startswith("Slow down") and not third.embeds
    assert sum("refused=cooldown" in r.getMessage() for r in caplog.records) == 1
    # Another user has their own allowance.
    await dpytest.message("!ask Who is Louis Bono?", member=1)
    assert replies()[0].embeds


async def test_allow_list_limits_channels(make_bot):
    bot = await make_bot(allowed_channels=[ALLOWED_CHANNEL_ID])
    guild = dpytest.get_config().guilds[0]
    allowed = backend.make_text_channel("questions", guild, id_num=ALLOWED_CHANNEL_ID)
    await dpytest.message("!ask Who is Louis Bono?", channel=0)
    await dpytest.message(f"<@{bot.user.id}> Who is Louis Bono?", channel=0)
    assert replies() == []
    await dpytest.message("!ask Who is Louis Bono?", channel=allowed)
    assert replies()[0].embeds


async def test_other_bots_are_ignored(bot):
    other = await dpytest.member_join(name="OtherBot")
    other._user.bot = True
    await dpytest.message("!ask Who is Louis Bono?", member=other)
    await dpytest.message(f"<@{bot.user.id}> Who is Louis Bono?", member=other)
    assert replies() == []


async def test_unknown_command_stays_quiet(bot):
    with pytest.raises(commands.CommandNotFound):  # dpytest re-raises every command error it sees
        await dpytest.message("!!! wow")
    assert replies() == []


async def test_logs_one_line_per_question_without_content(bot, caplog):
    caplog.set_level(logging.INFO)
    member = dpytest.get_config().members[0]
    await dpytest.message("!ask Who is Louis Bono?")
    await dpytest.message("!ask zzyzx quux")
    lines = [r.getMessage() for r in caplog.records if r.name == "qabot.discord"]
    assert len(lines) == 2
    assert all(f"user={member.id}" in line and "latency_ms=" in line for line in lines)
    assert "abstained=False" in lines[0] and "abstained=True" in lines[1]
    everything = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
    assert "Bono" not in everything and "zzyzx" not in everything


# --- the button and the slash command --------------------------------------------------------------------


async def test_show_context_button_reveals_neighbouring_sentences(bot, answerer):
    await dpytest.message("!ask Who is Louis Bono?")
    [reply] = replies()
    adapter = RecordingAdapter(bot)
    data = {"custom_id": "qabot:context", "component_type": 2}
    token = async_context.set(adapter)
    try:
        bot._connection.parse_interaction_create(interaction_payload(bot, 3, data, message=reply))
        await settle()
    finally:
        async_context.reset(token)
    [(kind, payload)] = adapter.calls
    assert kind == "response" and payload["type"] == 4
    assert payload["data"]["flags"] == 64  # ephemeral: only the person who clicked sees it
    assert payload["data"]["allowed_mentions"]["parse"] == []
    description = payload["data"]["embeds"][0]["description"]
    top = answerer.ask("Who is Louis Bono?").passages[0]
    assert top.context_before[:40] in description and top.context_after[:40] in description


async def test_slash_ask_defers_then_follows_up_with_the_embed(bot):
    adapter = RecordingAdapter(bot)
    await slash(bot, adapter, "ask", question="Who is Louis Bono?", top_k=1)
    (first, defer), (second, followup) = adapter.calls
    assert (first, defer["type"]) == ("response", 5)  # deferred: "qabot is thinking…"
    assert second == "followup"
    assert_no_pings(followup)
    embed = followup["embeds"][0]
    assert embed["title"] == "Who is Louis Bono?"
    assert embed["description"].count("\n> ") + embed["description"].startswith("> ") == 1  # top_k=1
    assert followup["components"]


async def test_slash_refuses_long_questions_privately(make_bot):
    bot = await make_bot(max_question_chars=10)
    adapter = RecordingAdapter(bot)
    await slash(bot, adapter, "ask", question="Who is Louis Bono exactly?")
    [(kind, payload)] = adapter.calls
    assert kind == "response" and payload["data"]["flags"] == 64
    assert "under 10 characters" in payload["data"]["content"]


async def test_slash_respects_the_allow_list(make_bot):
    bot = await make_bot(allowed_channels=[ALLOWED_CHANNEL_ID])
    adapter = RecordingAdapter(bot)
    await slash(bot, adapter, "ask", question="Who is Louis Bono?")
    [(kind, payload)] = adapter.calls
    assert kind == "response" and payload["data"]["flags"] == 64
    assert "only answer" in payload["data"]["content"]


async def test_slash_command_is_described():
    command = AskCog.ask_slash
    params = {param.name: param for param in command.parameters}
    assert command.description.startswith("Ask the articles")
    assert params["question"].required and params["question"].description
    assert not params["top_k"].required and params["top_k"].max_value == 10


# --- reload and sync ------------------------------------------------------------------------------------


async def test_owner_reload_swaps_in_a_fresh_index(make_bot, corpus_copy, tmp_path):
    settings = settings_for(corpus_copy, tmp_path / "cache")
    bot = await make_bot(settings, answerer_for(settings))
    bot.owner_ids = {dpytest.get_config().members[0].id}
    (corpus_copy / "900_new.txt").write_text("Zanzibar Quokka Festival\n\nThe Quokka festival opens in Zanzibar.\n",
                                             encoding="utf-8")
    await dpytest.message("!ask quokka festival zanzibar")
    assert replies()[0].content.startswith("The articles have no answer")
    await dpytest.message("!reload")
    assert replies()[0].content.startswith("Reloaded: 6 articles")
    await dpytest.message("!ask quokka festival zanzibar")
    assert "900_new.txt:3" in replies()[0].embeds[0].description


async def test_failed_reload_keeps_serving_the_old_index(make_bot, caplog):
    bot = await make_bot()
    bot.owner_ids = {dpytest.get_config().members[0].id}
    old = bot.answerer

    def broken_loader(settings):
        raise OSError("disk on fire")

    bot.loader = broken_loader
    await dpytest.message("!reload")
    reply = replies()[0].content
    assert reply.startswith("Reload failed; still answering from the previous index.") and "disk on fire" in reply
    assert bot.answerer is old
    await dpytest.message("!ask Who is Louis Bono?")
    assert replies()[0].embeds


async def test_reload_is_owner_only(bot):
    old = bot.answerer
    await dpytest.message("!reload", member=1)  # the application owner is someone else
    assert "Only the bot's owner" in replies()[0].content
    assert bot.answerer is old


async def test_slash_reload_by_owner_and_by_others(make_bot):
    bot = await make_bot()
    owner, other = dpytest.get_config().members[:2]
    bot.owner_ids = {owner.id}
    adapter = RecordingAdapter(bot)
    await slash(bot, adapter, "reload", member=other)
    assert "Only the bot's owner" in adapter.calls[-1][1]["data"]["content"]
    adapter.calls.clear()
    await slash(bot, adapter, "reload", member=owner)
    (_, defer), (_, followup) = adapter.calls
    assert defer["data"]["flags"] == 64 and followup["content"].startswith("Reloaded: 5 articles")


async def test_polling_picks_up_new_articles(make_bot, corpus_copy, tmp_path):
    settings = settings_for(corpus_copy, tmp_path / "cache", reload_poll_seconds=0.05)
    bot = await make_bot(settings, answerer_for(settings))
    first = bot.answerer
    (corpus_copy / "901_new.txt").write_text("Wombat Regatta\n\nThe wombat regatta sails at noon.\n",
                                             encoding="utf-8")
    for _ in range(200):
        if bot.answerer is not first and len(bot.answerer.index.docs) == 6:
            break
        await asyncio.sleep(0.05)
    await dpytest.message("!ask wombat regatta")
    assert "901_new.txt:3" in replies()[0].embeds[0].description


async def test_polling_an_unchanged_corpus_keeps_the_answerer(make_bot, corpus_copy, tmp_path, monkeypatch):
    settings = settings_for(corpus_copy, tmp_path / "cache", reload_poll_seconds=0.05)
    checks: list[bool] = []
    real = discord_bot.corpus_changed

    def counted(answerer: Answerer) -> bool:
        checks.append(real(answerer))
        return checks[-1]

    monkeypatch.setattr(discord_bot, "corpus_changed", counted)
    bot = await make_bot(settings, answerer_for(settings))
    first = bot.answerer
    for _ in range(200):
        if len(checks) >= 3:
            break
        await asyncio.sleep(0.05)
    assert checks[:3] == [False, False, False] and bot.answerer is first
    (corpus_copy / "902_new.txt").write_text("Okapi Census\n\nThe okapi census ends today.\n", encoding="utf-8")
    for _ in range(200):
        if bot.answerer is not first:
            break
        await asyncio.sleep(0.05)
    assert True in checks and len(bot.answerer.index.docs) == 6


async def test_sync_is_an_owner_command(bot, monkeypatch):
    calls = []

    async def fake_sync(*args, **kwargs):  # the real one talks to Discord's REST API
        calls.append(1)
        return [object(), object()]

    monkeypatch.setattr(bot.tree, "sync", fake_sync)
    await dpytest.message("!sync", member=1)
    assert "Only the bot's owner" in replies()[0].content and not calls
    bot.owner_id, bot.owner_ids = None, {dpytest.get_config().members[1].id}
    await dpytest.message("!sync", member=1)
    assert replies()[0].content == "Synced 2 slash commands." and calls == [1]


@pytest.mark.parametrize("sync", [False, True])
async def test_commands_sync_on_start_only_with_the_flag(seeds_settings, answerer, monkeypatch, sync):
    client = QabotBot(seeds_settings, answerer, sync=sync)
    calls = []

    async def fake_sync(*args, **kwargs):  # the real one talks to Discord's REST API
        calls.append(1)
        return []

    monkeypatch.setattr(client.tree, "sync", fake_sync)
    await client.setup_hook()
    assert calls == ([1] if sync else [])
    assert {command.name for command in client.tree.get_commands()} == {"ask", "reload"}
    await client.remove_cog("AskCog")


# --- concurrency ----------------------------------------------------------------------------------------

LOAD_QUESTIONS = ("Who is Louis Bono?", "who is pashinian", "Where were the talks held?", "zzyzx quux")


async def ask_concurrently(count: int) -> None:
    """Feed count questions through the gateway at once (not one by one as dpytest.message does)."""
    config = dpytest.get_config()
    for i in range(count):
        backend.make_message(f"!ask {LOAD_QUESTIONS[i % len(LOAD_QUESTIONS)]}", config.members[i % 3],
                             config.channels[0])
        await asyncio.sleep(0)  # let the loop breathe between gateway events, as a real socket would


class SlowAnswerer(Answerer):
    """The real answerer, made to take 150 ms per question, like a large corpus on a busy host."""

    def ask(self, question, top_k=None):
        time.sleep(0.15)
        return super().ask(question, top_k)


async def test_loop_never_blocks_while_answering(make_bot, answerer):
    slow = SlowAnswerer(answerer.index, answerer.params)
    await make_bot(answerer_=slow, cooldown_rate=10_000)
    gaps: list[float] = []
    done = asyncio.Event()

    async def probe() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    prober = asyncio.create_task(probe())
    await asyncio.sleep(0.02)
    slow.ask("Who is Louis Bono?")  # control: one answer on the loop itself is a gap the probe must see
    await asyncio.sleep(0.02)
    control = max(gaps)
    gaps.clear()
    await ask_concurrently(50)
    await dpytest.run_all_events()
    done.set()
    await prober
    assert control > 0.100
    assert len(replies()) == 50
    assert len(gaps) > 20 and max(gaps) < 0.100


LOAD_COUNT = 1000


async def test_many_concurrent_questions_all_get_their_reply(make_bot):
    await make_bot(cooldown_rate=10_000)
    await ask_concurrently(LOAD_COUNT)
    await dpytest.run_all_events()
    sent = replies()
    assert len(sent) == LOAD_COUNT
    got = collections.Counter(m.embeds[0].title if m.embeds else "abstained" for m in sent)
    asked = collections.Counter(LOAD_QUESTIONS[i % len(LOAD_QUESTIONS)] for i in range(LOAD_COUNT))
    asked["abstained"] = asked.pop("zzyzx quux")
    assert got == asked


# --- start-up, settings and the token ------------------------------------------------------------------


def test_check_reports_a_missing_token(seeds_settings, monkeypatch, capsys):
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    assert run_bot(seeds_settings, check=True, sync=False) == 2
    err = capsys.readouterr().err
    assert "DISCORD_TOKEN" in err and "missing" in err


def test_check_uses_the_configured_variable_and_never_prints_the_token(seeds_settings, monkeypatch, capsys):
    settings = replace(seeds_settings, token_env="QABOT_TEST_TOKEN")
    monkeypatch.setenv("QABOT_TEST_TOKEN", SENTINEL_TOKEN)
    assert run_bot(settings, check=True, sync=False) == 0
    out, err = capsys.readouterr()
    assert "QABOT_TEST_TOKEN" in out and SENTINEL_TOKEN not in out + err


def test_check_reports_a_missing_corpus(seeds_settings, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DISCORD_TOKEN", SENTINEL_TOKEN)
    settings = replace(seeds_settings, corpus=tmp_path / "nowhere")
    assert run_bot(settings, check=True, sync=False) == 2
    assert "nowhere" in capsys.readouterr().err


def test_check_flags_a_malformed_token(seeds_settings):
    problems = check_settings(seeds_settings, {"DISCORD_TOKEN": "not a token"})
    assert problems == ["DISCORD_TOKEN does not look like a Discord bot token (expected three dot-separated parts)"]


@pytest.mark.parametrize(
    ("token", "why"),
    [
        (f'"{SENTINEL_TOKEN}"', "it is in quotes"),
        (f"'{SENTINEL_TOKEN}'", "it is in quotes"),
        ("bm90LWRpZ2l0cw.GhIjKl.secretpart", "its first part is not a base64 application id"),  # "not-digits"
        ("MTA5OTk5.Gh IjKl.secretpart", "its parts may hold only letters, digits"),
    ],
)
def test_check_validates_the_token_exactly_as_invite_url_does(seeds_settings, token, why):
    from qabot.discord_invite import application_id_from_token

    [problem] = check_settings(seeds_settings, {"DISCORD_TOKEN": token})
    assert problem.startswith("DISCORD_TOKEN does not look like a Discord bot token (") and why in problem
    assert token not in problem
    with pytest.raises(ConfigError) as raised:
        application_id_from_token(token)
    assert str(raised.value) == problem


def test_run_without_token_is_a_config_error(seeds_settings, monkeypatch):
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="DISCORD_TOKEN"):
        run_bot(seeds_settings, check=False, sync=False)


def test_rejected_token_never_reaches_logs_or_errors(seeds_settings, monkeypatch, caplog, capsys):
    monkeypatch.setenv("DISCORD_TOKEN", SENTINEL_TOKEN)
    seen = []

    async def rejecting_login(self, token):  # what Discord answers to a bad token, without the network
        seen.append(token)
        raise discord.LoginFailure("Improper token has been passed.")

    monkeypatch.setattr(discord.http.HTTPClient, "static_login", rejecting_login)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConfigError) as raised:
        run_bot(seeds_settings, check=False, sync=False)
    assert seen == [SENTINEL_TOKEN]  # the real token did go to login
    out, err = capsys.readouterr()
    for text in (str(raised.value), repr(raised.value), caplog.text, out, err):
        assert SENTINEL_TOKEN not in text
    assert "DISCORD_TOKEN" in str(raised.value)


def test_log_formatter_redacts_the_token_even_in_tracebacks():
    formatter = RedactingFormatter(SENTINEL_TOKEN)
    try:
        raise RuntimeError(f"boom {SENTINEL_TOKEN}")
    except RuntimeError as exc:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "token %s", (SENTINEL_TOKEN,),
                                   (type(exc), exc, exc.__traceback__))
    text = formatter.format(record)
    assert SENTINEL_TOKEN not in text and "[redacted token]" in text


def test_qabot_bot_check_goes_through_the_cli(monkeypatch, capsys):
    from qabot.cli import main

    monkeypatch.setenv("DISCORD_TOKEN", SENTINEL_TOKEN)
    monkeypatch.chdir(Path(__file__).resolve().parent.parent)
    assert main(["bot", "--check"]) == 0
    out, err = capsys.readouterr()
    assert "settings look fine" in out and SENTINEL_TOKEN not in out + err


def test_bot_py_starts_the_same_bot(monkeypatch, capsys):
    import bot as bot_script

    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    monkeypatch.chdir(Path(__file__).resolve().parent.parent)
    assert bot_script.main([]) == 2
    assert capsys.readouterr().err.startswith("qabot: error: the bot token is missing")


async def test_a_bot_without_voice_logs_no_voice_warnings(seeds_settings, answerer, monkeypatch, caplog):
    # As on a host without PyNaCl or davey, where discord.py warns once per process.
    monkeypatch.setattr(discord.VoiceClient, "warn_nacl", True)
    monkeypatch.setattr(discord.VoiceClient, "warn_dave", True)
    caplog.set_level(logging.WARNING)
    client = QabotBot(seeds_settings, answerer)
    try:
        assert "voice will NOT be supported" not in caplog.text
        assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
    finally:
        await client.close()


def started_bot(settings, answerer, monkeypatch, synced_file, calls, application_id=42, fail=False) -> QabotBot:
    """A bot as login() leaves it (application id known), its command sync recorded instead of sent."""
    client = QabotBot(settings, answerer, synced_file=synced_file)
    client._connection.application_id = application_id

    async def fake_sync(*args, **kwargs):  # the real one talks to Discord's REST API
        calls.append(application_id)
        if fail:
            raise discord.HTTPException(types.SimpleNamespace(status=429, reason="Too Many Requests"), "slow down")
        return []

    monkeypatch.setattr(client.tree, "sync", fake_sync)
    return client


async def test_a_start_publishes_the_commands_when_they_changed_and_only_then(
    seeds_settings, answerer, monkeypatch, tmp_path
):
    synced_file = tmp_path / "cache" / "discord-commands.sha256"
    calls: list[int] = []
    first = started_bot(seeds_settings, answerer, monkeypatch, synced_file, calls)
    await first.setup_hook()  # the first run: nothing published yet
    assert calls == [42]
    assert synced_file.read_text("utf-8").strip() == command_fingerprint(first.tree, 42)

    await started_bot(seeds_settings, answerer, monkeypatch, synced_file, calls).setup_hook()
    assert calls == [42], "same commands, same application: no sync"

    await started_bot(seeds_settings, answerer, monkeypatch, synced_file, calls, application_id=7).setup_hook()
    assert calls == [42, 7], "another application has not got the commands yet"

    synced_file.write_text("fingerprint of an older version's commands\n", "utf-8")
    await started_bot(seeds_settings, answerer, monkeypatch, synced_file, calls, application_id=7).setup_hook()
    assert calls == [42, 7, 7]


async def test_the_fingerprint_follows_the_command_definitions(seeds_settings, answerer, monkeypatch, tmp_path):
    client = started_bot(seeds_settings, answerer, monkeypatch, tmp_path / "synced", [])
    await client.setup_hook()
    before = command_fingerprint(client.tree, 42)
    assert before == command_fingerprint(client.tree, 42) and before != command_fingerprint(client.tree, 43)
    client.tree.remove_command("reload")
    assert command_fingerprint(client.tree, 42) != before


async def test_a_failed_sync_leaves_the_bot_running_and_is_retried_next_start(
    seeds_settings, answerer, monkeypatch, tmp_path, caplog
):
    synced_file = tmp_path / "synced"
    calls: list[int] = []
    caplog.set_level(logging.WARNING)
    failing = started_bot(seeds_settings, answerer, monkeypatch, synced_file, calls, fail=True)
    await failing.setup_hook()
    assert failing.get_cog("AskCog") is not None and not synced_file.exists()
    assert "/ask appears after a run with --sync" in caplog.text
    await started_bot(seeds_settings, answerer, monkeypatch, synced_file, calls).setup_hook()
    assert calls == [42, 42] and synced_file.exists()


def test_run_bot_keeps_the_fingerprint_beside_the_index(seeds_settings):
    assert synced_commands_file(seeds_settings) == seeds_settings.index_dir / "discord-commands.sha256"
