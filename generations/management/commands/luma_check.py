"""Check the Luma connection: ping the configured base URL and read the credit balance, in one line."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from generations import luma


class Command(BaseCommand):
    help = "Ping Luma with the configured key and print the credit balance, or what is wrong."

    def handle(self, *args, **options):
        if not settings.LUMAAI_API_KEY:
            raise CommandError("No API key: set LUMAAI_API_KEY (./dev run uses the simulator when it is empty).")
        client = luma.client_from_settings()
        try:
            client.ping()
            balance = client.credits()
        except luma.LumaAuthError:
            raise CommandError(f"Bad API key: {settings.LUMA_BASE_URL} rejected LUMAAI_API_KEY (401).") from None
        except (luma.LumaConnectionError, luma.LumaTimeout) as error:
            raise CommandError(f"Unreachable: {settings.LUMA_BASE_URL} did not answer ({error}).") from None
        except luma.LumaError as error:
            raise CommandError(f"Luma answered with an error: {error}") from None
        self.stdout.write(f"OK: {settings.LUMA_BASE_URL} answers; credit balance ${balance / 100:,.2f}.")
