"""`python -m streamhouse.workbench.streamctl`, the same as the `streamctl` script."""

from streamhouse.workbench.streamctl import main

main()
