"""`python -m dagster_postgres_connection`: the same as the `dagster-postgres-connection` command."""

from dagster_postgres_connection.cli import main

if __name__ == "__main__":
    main()
