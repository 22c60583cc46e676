"""检测修复: the checks (and fixes) behind `certhelper doctor` and the tray's 检测修复 window."""
