"""`manage.py create_agent --name "Translator" --price 1 --publish [...]`: add a marketplace agent
(the admin does the same). Prints the new agent's id."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from agents.models import Agent


class Command(BaseCommand):
    help = "Create a marketplace agent."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--description", default="")
        parser.add_argument("--base-model", default="", help="the model the provider runs, e.g. deepseek-chat")
        parser.add_argument("--system-prompt", default="")
        parser.add_argument("--price", default="1", help="credits per 1,000 tokens")
        parser.add_argument("--tag", action="append", default=[], help="repeat for several tags")
        parser.add_argument("--provider", choices=["", "openai", "extractive"], default="")
        parser.add_argument("--provider-url", default="", help="OpenAI-compatible base URL (default: the server's)")
        parser.add_argument("--max-tokens", type=int, default=1024, help="most tokens one answer may have")
        parser.add_argument("--publish", action="store_true", help="make it findable, buyable and callable")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            price = Decimal(options["price"])
        except InvalidOperation:
            raise CommandError(f"--price must be a number, not {options['price']!r}") from None
        agent = Agent(
            name=options["name"],
            description=options["description"],
            base_model=options["base_model"],
            system_prompt=options["system_prompt"],
            price_per_1k=price,
            tags=options["tag"],
            provider=options["provider"],
            provider_url=options["provider_url"],
            max_tokens=options["max_tokens"],
            published=options["publish"],
        )
        try:
            agent.full_clean()
        except ValidationError as invalid:
            raise CommandError(
                "; ".join(f"{field}: {' '.join(errors)}" for field, errors in invalid.message_dict.items())
            ) from None
        agent.save()
        self.stdout.write(str(agent.pk))
