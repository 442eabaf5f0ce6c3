"""How people reach StreamHouse: HTTP app, `streamctl`, and the `streamhouse` server command."""
