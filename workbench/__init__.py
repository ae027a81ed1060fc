"""Nutshell's front ends: the headless CLI and the Textual app. Both only call core.Engine."""
