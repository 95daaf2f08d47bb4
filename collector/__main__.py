"""`python -m vardkoll.collector run --config FILE` (and `outbox-stats`, `dump-outbox`, `doctor`).

`vardkoll collector run|outbox-stats|dump-outbox` (vardkoll/cli.py) call this. The collector's systemd unit
(deploy/collector/vardkoll-collector.service) runs this module itself, without the CLI's typer (SPEC 6's
40 MB); it imports neither pydantic nor the server's stack (tests/collector_agent/test_config_and_agent.py).
"""

from __future__ import annotations

import argparse
import logging
import sys

import orjson

from .agent import Agent
from .config import ConfigError, load_config
from .outbox import Outbox


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vardkoll.collector", description="vardkoll edge collector")
    parser.add_argument("command", choices=["run", "outbox-stats", "dump-outbox", "doctor"])
    parser.add_argument("--config", required=True, help="the collector's TOML config file")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--server", default=None, help="doctor: the vardkoll server's address, to compare clocks")
    parser.add_argument("--timeout-s", type=float, default=10.0, help="doctor: how long to wait for each answer")
    args = parser.parse_args(argv)
    if args.command == "doctor":
        from .doctor import run_doctor

        report = run_doctor(args.config, server_url=args.server, timeout_s=args.timeout_s)
        sys.stdout.write(report.text)
        return report.exit_code
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "run":
        Agent(config).run()
        return 0
    outbox = Outbox(config.outbox.path)
    try:
        if args.command == "outbox-stats":
            print(orjson.dumps(outbox.stats().as_report(), option=orjson.OPT_INDENT_2).decode())
        else:
            outbox.dump_jsonl(sys.stdout.buffer)
    finally:
        outbox.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
