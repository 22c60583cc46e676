"""证书助手 (certhelper): the application layer over the token drivers."""

__version__ = "0.1.0"
