pytest_plugins = [
    "tests.fixtures.llm_nodes",
    "tests.fixtures.database",
    "tests.fixtures.knowledge",
    "tests.fixtures.app",
    "tests.fixtures.sla",
    "tests.fixtures.notify",
    "tests.fixtures.ldap_server",
    "tests.fixtures.security",
    "tests.fixtures.backups",
    "tests.fixtures.summary",
    "tests.fixtures.browser",
]
