"""core.network"""
