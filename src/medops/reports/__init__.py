"""Reports: turn stored runs into tables, JSON and exports for people and machines."""
