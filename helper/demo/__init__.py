"""A demo online business hall (演示大厅) that logs companies in with certhelper.

It stands in for the Cangzhou housing provident fund hall: ``create_hall_app``
builds the aiohttp app, ``run_demo_hall`` serves it (``certhelper demo-hall``).
"""

from helper.demo.hall import create_hall_app, run_demo_hall

__all__ = ["create_hall_app", "run_demo_hall"]
