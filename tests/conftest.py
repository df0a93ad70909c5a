pytest_plugins = ["tests.plugins.postgres", "tests.plugins.cards", "tests.plugins.idp",
                  "tests.plugins.nginx"]
