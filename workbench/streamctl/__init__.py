"""`streamctl`: the terminal client of a running StreamHouse server."""


def main() -> None:
    from streamhouse.workbench.streamctl.app import app
    from streamhouse.workbench.streamctl.session import run

    run(app)
