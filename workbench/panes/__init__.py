"""The panes of the workbench, one module each (see workbench/panes/base.py and docs/app.md)."""
