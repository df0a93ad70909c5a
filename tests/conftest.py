pytest_plugins = ["tests.plugins.postgres", "tests.plugins.cards", "tests.plugins.idp",
                  "tests.plugins.smtp", "tests.plugins.nginx", "tests.plugins.chromium",
                  "tests.plugins.ecps", "tests.plugins.apache", "tests.plugins.orgs"]
