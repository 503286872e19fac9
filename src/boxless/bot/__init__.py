"""The bot SDK: a Boxless account run headless that answers chat messages and
mini-app requests, hears escrow payments and runs scheduled jobs (docs/bots.md)."""

from boxless.bot.app import BotApp, Message, Payment, Request
from boxless.bot.inbox import Inbox, Limits
from boxless.bot.runtime import Bot

__all__ = ["Bot", "BotApp", "Inbox", "Limits", "Message", "Payment", "Request"]
