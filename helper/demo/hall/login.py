"""The demo hall's logins: the modern one (a certhelper login token checked with
:func:`helper.verify.verify_auth_token`) and the legacy one (a HEBCA ``SignText``
checked with :func:`helper.verify.verify_legacy_signature`); both share their
request checks and start the same session."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
from datetime import datetime
from typing import Any

from aiohttp import web

from helper.demo.hall.state import (
    BASE,
    CHALLENGE_TTL,
    COOKIE,
    HALL_KEY,
    Challenge,
    Hall,
    Session,
    User,
)
from helper.demo.web import NO_STORE, error_response
from helper.verify import (
    Identity,
    VerifyError,
    new_challenge,
    verify_auth_token,
    verify_legacy_signature,
)

log = logging.getLogger(__name__)


async def api_challenge(request: web.Request) -> web.StreamResponse:
    hall = request.app[HALL_KEY]
    session = hall.session(request) or hall.new_session()
    session.challenge = Challenge(new_challenge(), hall.clock())
    response = web.json_response(
        {"challenge": session.challenge.value, "expires_in": int(CHALLENGE_TTL.total_seconds())},
        headers=NO_STORE,
    )
    hall.set_cookie(response, session)
    return response


async def _login_request(request: web.Request, challenge_attr: str) -> Any:
    """The checks both logins share: JSON only, our own Origin, a session with an
    outstanding challenge. Returns (hall, session, body) or the error response."""
    hall = request.app[HALL_KEY]
    if request.content_type != "application/json":
        return error_response(415, "unsupported_media_type", "请求格式错误：只接受 JSON 格式的数据")
    sent_origin = request.headers.get("Origin")
    if sent_origin is not None and sent_origin != hall.origin:
        return error_response(403, "bad_origin", "请求来源不正确，已拒绝")
    session = hall.session(request)
    if session is None or getattr(session, challenge_attr) is None:
        return error_response(400, "no_challenge", "登录已失效，请刷新页面后重新登录")
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        return error_response(400, "bad_request", "请求格式错误")
    return hall, session, body


async def api_login(request: web.Request) -> web.StreamResponse:
    checked = await _login_request(request, "challenge")
    if isinstance(checked, web.Response):
        return checked
    hall, session, body = checked
    token = body.get("token") if isinstance(body, dict) else None
    if isinstance(token, str):
        try:
            token = json.loads(token)
        except ValueError:
            token = None
    if not isinstance(token, dict):
        return error_response(400, "bad_request", "请求中缺少登录凭证")

    challenge = session.challenge
    if challenge.used:
        return error_response(400, "challenge_used", "该登录请求已使用过，不能重复提交，请重新登录")
    challenge.used = True  # consumed by this attempt, whatever its outcome
    now = hall.clock()
    if now - challenge.issued > CHALLENGE_TTL:
        return error_response(400, "challenge_expired", "登录请求已过期（超过 5 分钟），请重新登录")
    if token.get("origin") != hall.origin:
        return error_response(403, "wrong_origin", "登录凭证不是为本网站生成的，已拒绝")
    try:
        identity = verify_auth_token(
            token,
            challenge.value,
            hall.origin,
            hall.anchors,
            now=now,
            intermediates=hall.intermediates,
        )
    except VerifyError as exc:
        log.info("login refused: %s %s", exc.code, exc.detail or "")
        return error_response(401, exc.code, f"证书登录失败：{exc.message_zh}")
    except (ValueError, TypeError) as exc:
        log.info("login refused: %s", exc)
        return error_response(400, "bad_request", "登录凭证格式错误")

    return _log_in(hall, session, identity, now, "login")


def _log_in(
    hall: Hall, session: Session, identity: Identity, now: datetime, how: str
) -> web.Response:
    """Start the logged-in session (both logins end here, so both open the same home)."""
    # a fresh session id on login (no session fixation); the old one is gone
    hall.sessions.pop(session.sid, None)
    logged_in = hall.new_session()
    issuer = next((v for k, v in reversed(_rdns(identity.issuer_dn)) if k == "CN"), "")
    logged_in.user = User(
        company=identity.subject_cn,
        unique_id=identity.hebca_unique_id,
        serial_hex=identity.serial_hex,
        not_after=identity.not_after,
        issuer=issuer or identity.issuer_dn,
        sha256=identity.sha256,
        login_time=now,
    )
    log.info("%s: %s (%s)", how, identity.subject_cn, identity.sha256[:16])
    response = web.json_response(
        {"ok": True, "company": identity.subject_cn, "redirect": f"{BASE}/home"},
        headers=NO_STORE,
    )
    hall.set_cookie(response, logged_in)
    return response


# --- the legacy login (HEBCA-compatible endpoint) ------------------------------
#
# SECURITY NOTE: the legacy protocol signs the bare challenge text (SignText). Unlike
# the modern token (SHA-256(origin) || SHA-256(challenge), helper.verify.signed_bytes),
# nothing in this signature names the site it was made for: a page that got the user
# to sign our challenge elsewhere could log in here with it. What limits that is the
# helper (the endpoint answers configured hall origins only, and signs with the
# login's PIN or a consent dialog) and our single-use, 5-minute, per-session
# challenge. The page says so: 旧版接口不绑定网站地址，建议使用新版登录.


def _b64_field(value: str) -> bytes:
    raw = base64.b64decode("".join(value.split()), validate=True)
    if not raw:
        raise ValueError("empty")
    return raw


async def api_legacy_challenge(request: web.Request) -> web.StreamResponse:
    hall = request.app[HALL_KEY]
    session = hall.session(request) or hall.new_session()
    session.legacy_challenge = Challenge(new_challenge(), hall.clock())
    response = web.json_response(
        {
            "challenge": session.legacy_challenge.value,
            "expires_in": int(CHALLENGE_TTL.total_seconds()),
        },
        headers=NO_STORE,
    )
    hall.set_cookie(response, session)
    return response


async def api_legacy_login(request: web.Request) -> web.StreamResponse:
    """``{cert, signature[, challenge]}``: cert and signature base64 (GetCertB64, SignText).

    The challenge checked is the one stored for this session; a ``challenge`` sent along
    must be that one. It is consumed by the first attempt, whatever its outcome."""
    checked = await _login_request(request, "legacy_challenge")
    if isinstance(checked, web.Response):
        return checked
    hall, session, body = checked
    if not isinstance(body, dict):
        return error_response(400, "bad_request", "请求格式错误")
    cert_b64, sig_b64, sent = body.get("cert"), body.get("signature"), body.get("challenge")
    if not isinstance(cert_b64, str) or not isinstance(sig_b64, str):
        return error_response(400, "bad_request", "请求中缺少证书或签名")
    if sent is not None and not isinstance(sent, str):
        return error_response(400, "bad_request", "请求格式错误")

    challenge = session.legacy_challenge
    if challenge.used:
        return error_response(400, "challenge_used", "该登录请求已使用过，不能重复提交，请重新登录")
    challenge.used = True  # consumed by this attempt, whatever its outcome
    now = hall.clock()
    if now - challenge.issued > CHALLENGE_TTL:
        return error_response(400, "challenge_expired", "登录请求已过期（超过 5 分钟），请重新登录")
    if sent is not None and not secrets.compare_digest(sent, challenge.value):
        return error_response(400, "challenge_mismatch", "签名内容与本次登录请求不一致，请重新登录")
    try:
        cert_der, signature = _b64_field(cert_b64), _b64_field(sig_b64)
    except (ValueError, binascii.Error):
        return error_response(400, "bad_request", "证书或签名的格式错误")
    try:
        identity = verify_legacy_signature(
            cert_der,
            signature,
            challenge.value,
            hall.anchors,
            now,
            intermediates=hall.intermediates,
        )
    except VerifyError as exc:
        log.info("legacy login refused: %s %s", exc.code, exc.detail or "")
        return error_response(401, exc.code, f"证书登录失败：{exc.message_zh}")
    except (ValueError, TypeError) as exc:
        log.info("legacy login refused: %s", exc)
        return error_response(400, "bad_request", "证书或签名的格式错误")
    return _log_in(hall, session, identity, now, "legacy login")


def _rdns(dn: str) -> list[tuple[str, str]]:
    """``CN=a,O=b`` -> [("CN", "a"), ("O", "b")] (display only; escaped commas kept)."""
    parts, out, current = [], [], ""
    escaped = False
    for ch in dn:
        if escaped:
            current += ch
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    for p in parts:
        key, _, value = p.partition("=")
        out.append((key.strip(), value.strip()))
    return out


async def logout(request: web.Request) -> web.StreamResponse:
    hall = request.app[HALL_KEY]
    sent_origin = request.headers.get("Origin")
    if sent_origin is not None and sent_origin != hall.origin:
        return error_response(403, "bad_origin", "请求来源不正确，已拒绝")
    session = hall.session(request)
    if session is not None:
        hall.sessions.pop(session.sid, None)
    response = web.HTTPSeeOther(f"{BASE}/")
    response.del_cookie(COOKIE, path=f"{BASE}/")
    raise response


async def to_hall(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(f"{BASE}/")
