"""Talking to tokens. Knows PKCS#11, nothing about web or UI; imports nothing from helper."""
