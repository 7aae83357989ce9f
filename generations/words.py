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
