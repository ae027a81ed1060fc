"""core.fs"""
