"""e-CPS, the mobile authentication factor (psc.md §6): phones enrolled as devices holding
an EC P-256 key, login by number matching approved with a signature of that key, and the
``psc-ecps`` phone-app simulator."""
