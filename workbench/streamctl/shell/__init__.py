"""The interactive `streamctl sql` shell and its piped-script mode.

`repl` owns the prompt loop, `splitting` decides where statements end, `client` talks to
`POST /api/v1/sql`, `render` prints answers (shared with the one-shot command), `completion`
and `catalog` feed tab completion, and `commands` implements the backslash commands.
"""
