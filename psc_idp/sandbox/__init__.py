"""The sandbox: a test PKI shaped like IGC-Santé TEST, test CPS cards in SoftHSM2 tokens,
a demo directory and a demo client, so that an integrator can log in within minutes."""
