"""The bot's invite link: the OAuth2 URL with the scopes and channel permissions the bot needs, made offline."""

from __future__ import annotations

import base64
import binascii
import re

import discord

from qabot.errors import ConfigError

SCOPES = ("bot", "applications.commands")
QUOTES = "\"'`“”‘’"  # a token pasted with the quotes of a shell or a document
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


def bot_permissions() -> discord.Permissions:
    """What the bot does in a channel: read it, reply (a reply references the question, hence the history),
    in threads too, with an embed. The bot creates no threads: its `to_thread` is Python's worker thread."""
    return discord.Permissions(
        view_channel=True,
        send_messages=True,
        send_messages_in_threads=True,
        embed_links=True,
        read_message_history=True,
    )


def application_id_from_token(token: str, token_env: str = "DISCORD_TOKEN") -> int:
    """The application (bot user) id a bot token carries: its first dot-separated part is the id in base64.

    ConfigError, naming the variable and never echoing the token, when the token is in quotes, is not three
    dot-separated parts of base64url characters, or its first part is not an application id. `qabot bot
    --check` and `--invite-url` both validate the token here.
    """
    token = token.strip()
    problem = f"{token_env} does not look like a Discord bot token"
    if token and (token[0] in QUOTES or token[-1] in QUOTES):
        raise ConfigError(f"{problem} (it is in quotes; set the variable to the token alone, without quote marks)")
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        raise ConfigError(f"{problem} (expected three dot-separated parts)")
    if not all(_BASE64URL.fullmatch(part) for part in parts):
        raise ConfigError(f"{problem} (its parts may hold only letters, digits, '-' and '_')")
    first = parts[0]
    try:
        decoded = base64.urlsafe_b64decode(first + "=" * (-len(first) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    if not (decoded.isdigit() and 0 < int(decoded) < 2**64):  # ids are 64-bit snowflakes
        raise ConfigError(f"{problem} (its first part is not a base64 application id)")
    return int(decoded)


def invite_url(application_id: int) -> str:
    """The OAuth2 URL that adds the bot to a server with SCOPES and bot_permissions()."""
    return discord.utils.oauth_url(application_id, permissions=bot_permissions(), scopes=SCOPES)
