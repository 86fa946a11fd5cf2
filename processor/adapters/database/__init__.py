"""The ward database: typed models, engine construction, migrations and the unit of work."""
