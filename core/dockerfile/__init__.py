"""core.dockerfile"""
