"""The access room: what the connecting role may read, write and will be able to read.

`privileges.py` asks the server (a fixed number of statements, `queries.py`), `readability.py`
holds the one rule "can the role read this relation" (the reader, `check` and `preview` apply
it), `findings.py` turns what was asked into findings for `check`, and `grants.py` writes the
GRANT and REVOKE statements that fix them (`check`, `grant-sql`).
"""
