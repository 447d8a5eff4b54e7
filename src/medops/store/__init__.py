"""The run store: every dataset, run, response, grade and cached call, in SQLite or PostgreSQL."""
