"""Test doubles and fixtures shared by every suite (tests mirror the source; nothing
imports another suite's conftest or helpers)."""
