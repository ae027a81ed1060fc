"""core.build"""
