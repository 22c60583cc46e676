"""The demo hall: a stand-in for the Cangzhou housing provident fund hall, served at /ish/.

Login flow (the shape a real hall backend follows, docs/bridge-protocol.md):

1. the page gets ``GET /ish/api/challenge``: 32 random bytes, base64url, stored
   server-side for the session cookie (HttpOnly, SameSite=Lax), single use, 5 minutes;
2. it asks the helper: ``CertHelper.authenticate(challenge)``;
3. it posts the login token to ``POST /ish/api/login`` (application/json only); the
   server checks it with :func:`helper.verify.verify_auth_token` against the challenge
   it stored (consumed by this first use) and its own origin, then starts a logged-in
   session under a new cookie and the page opens ``/ish/home``.

Every page is Chinese; the business pages show made-up data marked 演示数据.
"""

from helper.demo.hall.app import (
    create_hall_app,
    demo_token_ca_files,
    run_demo_hall,
    split_ca_certificates,
)
from helper.demo.hall.state import BASE, DEFAULT_HEBCA_PORT
from helper.demo.web import CST, DEFAULT_HELPER

__all__ = [
    "BASE",
    "CST",
    "DEFAULT_HEBCA_PORT",
    "DEFAULT_HELPER",
    "create_hall_app",
    "demo_token_ca_files",
    "run_demo_hall",
    "split_ca_certificates",
]
