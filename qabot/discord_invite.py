"""The bot's invite link: the OAuth2 URL with the scopes and channel permissions the bot needs, made offline."""

from __future__ import annotations

import base64
import binascii

import discord

from qabot.errors import ConfigError

SCOPES = ("bot", "applications.commands")


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

    ConfigError, naming the variable and never echoing the token, when the token is not of that shape.
    """
    parts = token.strip().split(".")
    problem = f"{token_env} does not look like a Discord bot token"
    if len(parts) != 3 or not all(parts):
        raise ConfigError(f"{problem} (expected three dot-separated parts); or pass --application-id ID")
    first = parts[0]
    try:
        decoded = base64.urlsafe_b64decode(first + "=" * (-len(first) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    if not decoded.isdigit():
        raise ConfigError(f"{problem} (its first part is not a base64 application id); or pass --application-id ID")
    return int(decoded)


def invite_url(application_id: int) -> str:
    """The OAuth2 URL that adds the bot to a server with SCOPES and bot_permissions()."""
    return discord.utils.oauth_url(application_id, permissions=bot_permissions(), scopes=SCOPES)
