"""Reports: set-based queries and their CSV shapes (occupancy, patient list, admissions/discharges, bed
utilization, and the quick patient export), and writing them into ``outbox/reports/``."""
