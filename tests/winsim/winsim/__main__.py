"""``python -m winsim fleet --state-dir DIR --hosts N [--profiles p1,p2] [--https] [--base-port P] --inventory out.yml``

Starts N simulated hosts on loopback ports, cycling through the profiles, writes an Ansible inventory and
serves until SIGTERM or SIGINT, then saves every host's state. Started again with the same state directory
it brings the same hosts back (same ports when they are free).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from .fleet import FleetRuntime, Spec, build_fleet, default_profiles, generated_specs, load_config, serve


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m winsim", description="simulated Windows hosts over WinRM")
    commands = parser.add_subparsers(dest="command", required=True)
    fleet = commands.add_parser("fleet", help="start a fleet of simulated hosts")
    fleet.add_argument("--state-dir", type=Path, required=True, help="fleet state; reused when it exists")
    fleet.add_argument("--hosts", type=int, default=0, help="number of hosts to create (named win0001...)")
    fleet.add_argument("--profiles", default="", help="comma-separated profiles to cycle through (default: all)")
    fleet.add_argument("--spec", type=Path, help="JSON list of {name, profile, overrides} instead of --hosts")
    fleet.add_argument("--https", action="store_true", help="HTTPS listeners with a self-signed certificate")
    fleet.add_argument("--base-port", type=int, default=0, help="first listener port (default: any free port)")
    fleet.add_argument("--control-port", type=int, default=0, help="control endpoint port (default: any)")
    fleet.add_argument("--inventory", type=Path, help="write an Ansible YAML inventory here")
    fleet.add_argument("--transport", default="ntlm", help="ansible_winrm_transport for the inventory")
    fleet.add_argument("--latency-ms", type=float, default=0.0, help="added to every request of every host")
    fleet.add_argument("--ready-file", type=Path, help="written (JSON: control port, endpoints) once serving")
    fleet.add_argument("--log-level", default="WARNING")
    return parser.parse_args(argv)


def specs_from_args(args: argparse.Namespace) -> list[Spec]:
    if args.spec:
        raw = json.loads(args.spec.read_text(encoding="utf-8"))
        return [Spec(item["name"], item["profile"], dict(item.get("overrides") or {})) for item in raw]
    if args.hosts:
        profiles = [p for p in args.profiles.split(",") if p] or default_profiles()
        return generated_specs(args.hosts, profiles)
    return []


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    specs = specs_from_args(args)
    args.state_dir.mkdir(parents=True, exist_ok=True)
    if not specs and not load_config(args.state_dir)[1]:
        print("nothing to start: give --hosts N or --spec FILE, or a state directory of an earlier fleet",
              file=sys.stderr)
        return 2

    async def run() -> None:
        runtime = FleetRuntime(args.state_dir, https=args.https, latency_ms=args.latency_ms)
        build_fleet(runtime, specs, args.base_port or None)
        await serve(runtime, control_port=args.control_port, ready_file=args.ready_file,
                    inventory=args.inventory, transport=args.transport)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
