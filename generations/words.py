"""Luma's validation and failure messages in plain words: what went wrong and what to change.

Luma's texts are terse ("Loop is not supported for end frame"); the card and the form say what to do instead,
keeping Luma's own words beside them. Unknown texts pass through unchanged.
"""

import re

LOOP_ADVICE = "untick Loop, or make it without an end frame"
# (pattern on Luma's text, plain words); a pattern's groups can be used as {0}, {1}.
KNOWN = [
    (r"loop is not supported for end frame",
     f"A loop ends where it starts, so it cannot also have an end frame: {LOOP_ADVICE}."),
    (r"loop is not supported for keyframes",
     f"A loop ends where it starts, so it cannot have both a start and an end image: {LOOP_ADVICE}."),
    (r"loop is not supported for extend reverse",
     "A reverse extend leads into a video, so it cannot loop: untick Loop."),
    (r"loop is not supported for interpolate",
     "An interpolation runs from one frame to another, so it cannot loop: untick Loop."),
    (r"prompt is required", "Write a prompt: Luma needs one for this."),
    (r"prompt is too short, minimum length is (\d+)", "The prompt is too short: write at least {0} characters."),
    (r"prompt is too long, maximum length is (\d+)", "The prompt is too long: {0} characters at most."),
    (r"no keyframes provided", "Choose a start frame, an end frame or a video to continue."),
    (r"concepts are not supported for this model", "Concepts work with Ray 2 only: remove them or switch to Ray 2."),
    (r"unknown concept: (\S+)", "Luma no longer offers the concept {0}: choose another."),
    (r"generation \S+ is not completed", "The source was not finished yet: wait until it is done, then try again."),
    (r"generation \S+ is not a video", "The source is an image: extend, upscale and add audio need a video."),
    (r"generation \S+ not found", "Luma no longer has the source (it may have been deleted): choose another."),
    (r"insufficient credits?", "The team's Luma account is out of credit: ask whoever pays for Luma to top it up."),
    (r"(image_ref|style_ref) supports at most (\d+)", "Use at most {1} images as references of that kind."),
    (r"character_ref supports at most (\d+)", "A character takes at most {0} images."),
]
_COMPILED = [(re.compile(pattern, re.IGNORECASE), text) for pattern, text in KNOWN]


def friendly(message: str) -> str:
    """Luma's message in plain words, or the message itself when we do not know it."""
    for pattern, text in _COMPILED:
        if found := pattern.search(message or ""):
            return text.format(*found.groups())
    return message


# The Agents API's failure codes (luma-agents-api.md section 7): what happened, and the try-again link's words.
FAILURE_CODES = {
    "content_moderated": ("Luma's moderation flagged the prompt, an input or the result. Change the prompt or the "
                          "images, then try again; nothing was charged.", "Edit the prompt"),
    "generation_failed": ("The model failed on Luma's side; this is usually passing. Try again; nothing was "
                          "charged.", "Try again"),
    "budget_exhausted": ("The team's Luma balance ran out while this was being made. Ask whoever pays for Luma to "
                         "add credit, then try again.", "Try again"),
    "output_not_found": ("Luma finished but could not find the result; try again, nothing was charged.",
                         "Try again"),
    "image_too_large": "An input image is too large for Luma (50 MB at most): use a smaller one.",
    "unsupported_format": "Luma cannot read an input's format: use a JPEG or PNG image, or an MP4 video.",
    "corrupt_input": "Luma could not decode an input: export it again or choose another.",
    "invalid_request": ("Luma found the request invalid while making it: check the settings (frames, loop, HDR, "
                        "resolution), then try again.", "Edit and try again"),
    "rate_limited": ("Luma was too busy to finish this (rate limited); try again in a minute, nothing was charged.",
                     "Try again"),
}


def failure_code_advice(code: str | None) -> tuple[str, str] | None:
    """(advice, link words) for an Agents failure_code, or None for no code or an unknown one."""
    advice = FAILURE_CODES.get(code or "")
    if advice is None:
        return None
    return advice if isinstance(advice, tuple) else (advice, "Fix the input")
