"""The `streamhouse` command: `streamhouse serve [flags]`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from streamhouse.workbench.settings import ServerSettings, SettingsError, load_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamhouse", description="StreamHouse server")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run a StreamHouse agent")
    serve.add_argument("--config", type=Path, help="TOML file with settings")
    for name, field in ServerSettings.model_fields.items():
        flag = "--" + name.replace("_", "-")
        serve.add_argument(flag, dest=name, default=None, help=f"default: {field.default}")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    flags = {k: v for k, v in vars(args).items() if k not in ("command", "config")}
    try:
        settings = load_settings(flags, args.config)
    except SettingsError as exc:
        print(f"streamhouse: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="ts=%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)s",
    )
    # sqlglot warns about each statement it cannot parse, quoting it: that is the client's
    # error, answered to the client (400), not the operator's; keep user SQL out of the log.
    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    from streamhouse.workbench.server import serve

    try:
        asyncio.run(serve(settings))
    except Exception as exc:  # a start-up failure: say what failed, exit non-zero
        logging.getLogger("streamhouse.server").error("failed: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
