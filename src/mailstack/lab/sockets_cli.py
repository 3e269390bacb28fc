"""`mailstack lab` with only the socket example apps, until the lab's own
command (mailstack.lab) takes them over with `sockets.add_commands`."""

from __future__ import annotations

import argparse
from typing import Any

from mailstack.lab.sockets import add_commands


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    lab = subparsers.add_parser("lab", help="the lectures' small Internet and example programs")
    add_commands(lab.add_subparsers(dest="lab_command", metavar="COMMAND", required=True), common)
