"""Installer assets for Windows and macOS (templates + :func:`generate`); see generate.py."""

from installer.assets.generate import generate, render

__all__ = ["generate", "render"]
