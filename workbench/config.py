"""The workbench's config file: key remaps and the theme.

``$XDG_CONFIG_HOME/nutshell/workbench.toml`` (core.paths: ``NUTSHELL_CONFIG_DIR`` overrides
the directory)::

    theme = "dark"              # dark | light | terminal (the terminal's own 16 colours),
                                # or any Textual theme name ("nord", "gruvbox", ...)

    [keys]                      # binding id = "key[,key...]"  (ids: press ? in the app)
    "app.quit" = "q,ctrl+q"
    "images.pull" = "P"
    "table.filter" = "slash,ctrl+f"

A missing file is the defaults; a broken one is reported in the app (a notification) and
otherwise ignored, so a typo never keeps the app from starting.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

CONFIG_FILE = "workbench.toml"

THEME_ALIASES = {
    "dark": "nutshell-dark",
    "light": "nutshell-light",
    "terminal": "nutshell-terminal",
    "ansi": "nutshell-terminal",
}
THEME_CYCLE = ("nutshell-dark", "nutshell-light", "nutshell-terminal")
DEFAULT_THEME = "nutshell-dark"


@dataclass
class WorkbenchConfig:
    """The workbench's settings from workbench.toml: theme and keys, and what was wrong in it."""
    theme: str = DEFAULT_THEME
    keys: dict[str, str] = field(default_factory=dict)
    path: str | None = None
    errors: list[str] = field(default_factory=list)


def config_path(config_dir: str) -> str:
    return os.path.join(config_dir, CONFIG_FILE)


def load_config(config_dir: str | None) -> WorkbenchConfig:
    """Read ``workbench.toml`` from ``config_dir`` (None or missing: defaults)."""
    cfg = WorkbenchConfig()
    if not config_dir:
        return cfg
    path = config_path(config_dir)
    cfg.path = path
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return cfg          # the usual case: tomllib not even imported (~4 ms of the start)
    except OSError as exc:
        cfg.errors.append(f"{path}: {exc}")
        return cfg
    import tomllib

    try:
        with f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        cfg.errors.append(f"{path}: {exc}")
        return cfg
    theme = data.get("theme")
    if theme is not None:
        if isinstance(theme, str) and theme:
            cfg.theme = THEME_ALIASES.get(theme, theme)
        else:
            cfg.errors.append(f"{path}: theme must be a string")
    keys = data.get("keys", {})
    if not isinstance(keys, dict):
        cfg.errors.append(f"{path}: [keys] must be a table of binding id = \"keys\"")
        keys = {}
    for ident, value in keys.items():
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        if not isinstance(value, str) or not value.strip():
            cfg.errors.append(f"{path}: keys.{ident} must be a key string like \"ctrl+f\"")
            continue
        cfg.keys[str(ident)] = value.replace(" ", "")
    return cfg


def themes() -> list:
    """The three themes of the workbench (Textual Theme objects)."""
    from textual.theme import BUILTIN_THEMES, Theme

    dark = Theme(
        name="nutshell-dark", primary="#4A9FD8", secondary="#2E6F9E", accent="#E5A84B",
        warning="#E5A84B", error="#D0545F", success="#5DBB73", foreground="#DADADA",
        background="#16181C", surface="#1E2127", panel="#262A31", dark=True,
        variables={"footer-key-foreground": "#E5A84B"},
    )
    light = Theme(
        name="nutshell-light", primary="#1D5F99", secondary="#3A7CC2", accent="#A65E00",
        warning="#A65E00", error="#B3263A", success="#2D7A3E", foreground="#1E1E1E",
        background="#F4F4F2", surface="#E8E8E5", panel="#DCDCD8", dark=False,
        variables={"footer-key-foreground": "#1D5F99"},
    )
    base = BUILTIN_THEMES.get("ansi-dark") or BUILTIN_THEMES.get("textual-ansi")
    if base is not None:
        terminal = replace(base, name="nutshell-terminal")
    else:  # pragma: no cover - older Textual
        terminal = replace(dark, name="nutshell-terminal")
    return [dark, light, terminal]


def register_themes(app) -> None:
    for theme in themes():
        app.register_theme(theme)
