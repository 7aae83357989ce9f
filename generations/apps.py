"""App configuration for generations: Luma generations, their jobs and the team library."""

from django.apps import AppConfig


class GenerationsConfig(AppConfig):
    name = "generations"
    verbose_name = "Generations"
