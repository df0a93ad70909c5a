"""The practitioner directory: the national extract (RPPS, ADELI, PSI and other identities)
imported into the database (psc.md §8, §10), looked up at login and turned into PSC's
professional claims (psc.md §3)."""
