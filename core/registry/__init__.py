"""core.registry"""
