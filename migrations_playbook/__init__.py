"""The migration playbook: steps as data, the engine, and the `strangler` command line."""
