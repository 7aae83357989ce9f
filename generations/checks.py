"""System checks (`manage.py check`, and before runserver, migrate, qcluster...): settings that cannot be right.

Luma's two APIs have two base URL settings, and the names are easy to mix up: lumaweb reads LUMAAI_BASE_URL for
Dream Machine (the name Luma's `lumaai` SDK uses) and LUMA_AGENTS_BASE_URL for the Agents API, while Luma's own
`luma-agents` SDK reads LUMA_BASE_URL for the Agents host. Older installs set LUMA_BASE_URL for Dream Machine, and
lumaweb still reads it when LUMAAI_BASE_URL is unset (settings.py). So an environment written for the Agents SDK
would send Dream Machine's requests to the Agents host, and nobody would be told. These checks say so at start.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

AGENTS_HOST = "agents.lumalabs.ai"


def _segments(url: str) -> list[str]:
    return [part.lower() for part in urlsplit(url).path.split("/") if part]


def looks_like_agents(url: str) -> bool:
    """Luma's Agents API: its host, or an "/agents" path (a proxy, the simulator)."""
    return (urlsplit(url).hostname or "").lower() == AGENTS_HOST or "agents" in _segments(url)


def looks_like_dream_machine(url: str) -> bool:
    """Dream Machine v1: a "/dream-machine" path (Luma's own, a proxy, the simulator)."""
    return "dream-machine" in _segments(url)


@register(Tags.compatibility)
def luma_base_urls(app_configs=None, **kwargs) -> list:
    """Each base URL points at its own API, under the name that cannot be read for the other one."""
    problems = []
    dream_machine = (getattr(settings, "LUMA_BASE_URL", "") or "").strip()
    agents = (getattr(settings, "LUMA_AGENTS_BASE_URL", "") or "").strip()
    old_name, new_name = os.environ.get("LUMA_BASE_URL", "").strip(), os.environ.get("LUMAAI_BASE_URL", "").strip()
    if old_name and not new_name:
        problems.append(Warning(
            f"LUMA_BASE_URL is set ({old_name}) and read as Dream Machine's address, but Luma's Agents SDK reads "
            f"that same name for the Agents host.",
            hint="Rename it to LUMAAI_BASE_URL. The Agents API's address is LUMA_AGENTS_BASE_URL.",
            id="generations.W001"))
    elif old_name and new_name and old_name.rstrip("/") not in (dream_machine, agents):
        problems.append(Warning(
            f"LUMA_BASE_URL is set ({old_name}) but lumaweb does not use it: Dream Machine is at LUMAAI_BASE_URL "
            f"({dream_machine}) and the Agents API at LUMA_AGENTS_BASE_URL ({agents}).",
            hint="If it is meant for the Agents API, set LUMA_AGENTS_BASE_URL to it; otherwise remove it.",
            id="generations.W002"))
    if dream_machine and looks_like_agents(dream_machine):
        name = "LUMAAI_BASE_URL" if new_name else "LUMA_BASE_URL"
        problems.append(Error(
            f"Dream Machine's base URL ({name}={dream_machine}) is the Agents API's address: Dream Machine's "
            f"requests would go to the Agents API and fail.",
            hint="Set LUMAAI_BASE_URL to Dream Machine's address (https://api.lumalabs.ai/dream-machine/v1) and "
                 "LUMA_AGENTS_BASE_URL to the Agents API's (https://agents.lumalabs.ai/v1).",
            id="generations.E001"))
    if agents and looks_like_dream_machine(agents):
        problems.append(Error(
            f"The Agents API's base URL (LUMA_AGENTS_BASE_URL={agents}) is Dream Machine's address: Ray 3.2 and "
            f"Uni-1 requests would go to Dream Machine and fail.",
            hint="Set LUMA_AGENTS_BASE_URL to the Agents API's address (https://agents.lumalabs.ai/v1) and "
                 "LUMAAI_BASE_URL to Dream Machine's (https://api.lumalabs.ai/dream-machine/v1).",
            id="generations.E002"))
    return problems
