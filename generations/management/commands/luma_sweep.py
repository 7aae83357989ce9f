"""Run the periodic sweep once, now (the cluster also runs it every minute)."""

from django.core.management.base import BaseCommand

from generations import tasks


class Command(BaseCommand):
    help = "Run the sweep once: admit, reconcile lost creates, poll quiet generations, restart archives."

    def handle(self, *args, **options):
        tasks.sweep()
        self.stdout.write("sweep done")
