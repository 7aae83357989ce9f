"""App configuration for generations: Luma generations, their jobs and the team library."""

from django.apps import AppConfig


class GenerationsConfig(AppConfig):
    name = "generations"
    verbose_name = "Generations"

    def ready(self) -> None:
        # The prompt index's triggers are put back after any migration that rebuilds the table (search.py).
        from . import search  # noqa: F401
        # New accounts get the default role (roles.py).
        from . import roles  # noqa: F401
        # Luma's two base URL settings are checked at start: neither may point at the other API (checks.py).
        from . import checks  # noqa: F401
