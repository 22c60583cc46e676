"""One-job checks for ``certhelper doctor`` (see docs/doctor.md)."""

from helper.doctor.checks.base import DoctorEnv, Finding, Level
from helper.doctor.checks.daemon import daemon_findings
from helper.doctor.checks.desktop import autostart_findings, scheme_findings
from helper.doctor.checks.extension import native_host_findings
from helper.doctor.checks.policy import policy_findings
from helper.doctor.checks.tls import nss_findings, tls_findings
from helper.doctor.checks.usb import usb_findings

__all__ = [
    "DoctorEnv",
    "Finding",
    "Level",
    "autostart_findings",
    "daemon_findings",
    "native_host_findings",
    "nss_findings",
    "policy_findings",
    "scheme_findings",
    "tls_findings",
    "usb_findings",
]
