"""Subcommands of the codesync-load CLI that belong to no single package."""
