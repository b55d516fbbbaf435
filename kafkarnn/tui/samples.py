"""The monitor's sample panes: the live sample and a `g` continuation, each character shaded by
the probability the model gave it, and the stretches it shares with the training text marked.

Text the model wrote always goes in as `rich.text.Text`, never as markup, with control characters
made visible, so `[`, escape sequences or a carriage return in a sample cannot break the screen.
"""

from __future__ import annotations

import math
import unicodedata

from rich.text import Text

from kafkarnn.seam import Copied, Snapshot
from kafkarnn.tui.widgets import _Pane

SURE, UNSURE = 0.5, 0.1                  # probability thresholds for shading a character
STYLE_SURE, STYLE_MID, STYLE_UNSURE = "bold", "", "dim underline"
STYLE_COPIED = "reverse"                 # a stretch also found in the training text (reads in NO_COLOR)
STYLE_PROMPT = "dim italic"              # the user's own text: never mistaken for a copied stretch

# characters that must not reach the terminal as they are (besides C0/C1 controls)
_INVISIBLE = {"Cf", "Zl", "Zp", "Cs", "Co"}


def visible(ch: str) -> str:
    """How one generated character is drawn: control characters become visible symbols."""
    if ch == "\n":
        return ch
    o = ord(ch)
    if o < 0x20:
        return chr(0x2400 + o)            # ␀ … ␟ (tab is ␉, escape ␛, carriage return ␍)
    if o == 0x7F:
        return "␡"
    cat = unicodedata.category(ch)
    if cat == "Cc" or cat in _INVISIBLE:
        return "�"
    return ch


def shaded(text: str, probs=(), prefix: str = "") -> Text:
    """`prefix` dim and italic, then `text` with each character styled by its probability:
    bold when the model was sure (p > 0.5), plain in between, dim and underlined when it was
    unsure (p < 0.1) — legible without colour too."""
    out = Text()
    if prefix:
        out.append("".join(visible(c) for c in prefix), style=STYLE_PROMPT)
    run, run_style = [], None
    for i, ch in enumerate(text):
        p = probs[i] if i < len(probs) else None
        if p is None or not math.isfinite(p):
            style = STYLE_MID
        else:
            style = STYLE_SURE if p > SURE else STYLE_UNSURE if p < UNSURE else STYLE_MID
        if style != run_style and run:
            out.append("".join(run), style=run_style or None)
            run = []
        run_style = style
        run.append(visible(ch))
    if run:
        out.append("".join(run), style=run_style or None)
    return out


def legend(copies: bool = False) -> Text:
    out = Text.assemble(("sure", STYLE_SURE), " · so-so · ", ("unsure", STYLE_UNSURE))
    return Text.assemble(out, " · ", ("copied", STYLE_COPIED)) if copies else out


def mark_copies(out: Text, copied: Copied | None, offset: int = 0) -> Text:
    """`out` with the copied stretches (at least `copied.min_len` long) in STYLE_COPIED; the
    characters of `out` from `offset` on are the checked text's, one for one."""
    for start, length, _ in copied.stretches if copied else ():
        out.stylize(STYLE_COPIED, offset + start, offset + start + length)
    return out


def copy_title(copied: Copied | None) -> str:
    """The longest stretch shared with the training text, for a pane's title."""
    if copied is None:
        return ""
    return f" · {copied.note}" if copied.note else f" · longest copied {copied.longest}"


class SamplePane(_Pane):
    """The latest live sample, each character shaded by the probability the model gave it."""

    _title: tuple | None = None

    def on_mount(self) -> None:
        self.border_title = "Sample"
        self.border_subtitle = legend()
        self.update(Text("the first sample arrives after a few seconds of training", "dim"))

    def show(self, s: Snapshot) -> None:
        if (s.temperature, s.sample_copied) != self._title:
            self._title = (s.temperature, s.sample_copied)
            self.border_title = Text(f"Sample · T {s.temperature:.2f}{copy_title(s.sample_copied)}")
            self.border_subtitle = legend(copies=bool(s.sample_copied and s.sample_copied.stretches))
        if s.sample_id:
            self.show_if_changed(s.sample_id, lambda: mark_copies(shaded(s.sample, s.sample_probs),
                                                                  s.sample_copied))

    def show_text(self, text: str, probs=()) -> None:
        """Show `text` (used by tests and screenshots, and for any string at all)."""
        self._key = None
        self.update(shaded(text, probs))


class GeneratedPane(_Pane):
    """The latest continuation from the `g` dialog: the prompt dim and italic, then the text."""

    def on_mount(self) -> None:
        self.border_title = "Generated"
        self.update(Text("press g to continue a prompt of your own with the current model", "dim"))

    def show(self, prompt: str, text: str, probs, temperature: float, iteration: int,
             copied: Copied | None = None) -> None:
        self.border_title = Text(f"Generated · T {temperature:.2f} · iteration {iteration:,}"
                                 f"{copy_title(copied)}")
        self.border_subtitle = legend(copies=bool(copied and copied.stretches))
        self._key = None
        self.update(mark_copies(shaded(text, probs, prefix=prompt), copied, offset=len(prompt)))
