"""The practitioner directory: the national RPPS/ADELI extract imported into the database
(psc.md §8), looked up at login and turned into PSC's professional claims (psc.md §3)."""
