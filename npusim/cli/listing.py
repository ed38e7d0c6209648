"""`npusim presets` and `npusim programs`: list what exists (fast: no torch, no matplotlib)."""

from __future__ import annotations

import argparse
from typing import Any

from npusim.cli import common
from npusim.config import available_presets, keys, load_preset
from programs import registry


def add_parsers(sub: Any) -> None:
    presets = common.command(sub, "presets", "list the hardware presets, or one preset's keys and values",
                             "npusim presets --keys --preset 910b3")
    presets.add_argument("--keys", action="store_true", help="print every key of --preset with its value")
    presets.add_argument("--preset", default="910b2", help="preset for --keys (default: 910b2)")
    common.command(sub, "programs", "list the programs `npusim run` knows", "npusim programs")


def presets(args: argparse.Namespace) -> int:
    if args.keys:
        config = common.preset(args.preset)
        for key in keys():
            print(f"{key} = {config.get(key)!r}")
        return common.OK
    for name in available_presets():
        print(f"{name:<10} {load_preset(name).description}")
    return common.OK


def programs(args: argparse.Namespace) -> int:
    for workload in registry.WORKLOADS.values():
        variants = f" (variants: {', '.join(workload.variants)})" if workload.variants else ""
        print(f"{workload.name:<16} {workload.summary}{variants}")
    return common.OK
