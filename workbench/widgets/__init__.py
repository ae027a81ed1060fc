"""Widgets shared by the panes: FilterTable, JSON tree, log viewer, file tree..."""
