"""检测修复: the checks behind `certhelper doctor` and the tray's 检测修复 window.

The doctor only reads: it never tries a PIN and never writes to a token. Each
check reads the machine through a :class:`DoctorEnv`, so tests can point it at
fake trees (docs/doctor.md).
"""

from helper.doctor.checks.base import DoctorEnv, Finding, Level
from helper.doctor.run import run_doctor

__all__ = ["DoctorEnv", "Finding", "Level", "run_doctor"]
