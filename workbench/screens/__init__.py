"""Screens of the workbench: modal dialogs (confirm, forms), help, command history."""
