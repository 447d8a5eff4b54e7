"""Experiment tracking: subscribers to the run events (``medops.events``) that send finished runs
to external trackers. Above reports (a tracker gets the run's report), below the CLI."""
