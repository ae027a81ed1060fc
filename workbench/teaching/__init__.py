"""Widgets and helpers shared by the Containers, Stats, Terminals and Learn panes.

- ``format``: sizes, percentages, text sparklines, shell quoting of equivalent commands.
- ``base``: ``PaneBase``, the engine/read-only plumbing those panes share (actions in
  thread workers, ``CommandRun`` for each, errors as the CLI's one-line text).
- ``texts``: the explanations a teacher can read aloud in the Learn pane.
"""
